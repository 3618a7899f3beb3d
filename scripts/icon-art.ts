import type { ToolbarState, ToolbarTheme } from '../extension/lib/toolbar-icon';

/**
 * Underpass's icons as SVG: one mark, a portal (a road's arch under a bridge), drawn on a 32-unit grid so every
 * edge lands on a whole pixel at 16 px. `scripts/icons.ts` writes these SVGs and their PNGs; the unit tests
 * check that the committed files match and that every toolbar state stays distinct at 16 px.
 *
 * Each toolbar state differs in shape as well as colour, so it reads without colour vision and at a glance. A
 * solid portal means your traffic is held in the tunnel, an outline that it is not:
 *   off          grey outline                     connecting   amber dashed outline
 *   protected    green solid                      reconnecting amber solid, the arch broken at the top
 *   error        red, the tunnel closed, a "!"    volunteering blue outline, a dot (a passer-by) in the arch
 *   protected-volunteering: green solid with the blue dot.
 */

/**
 * The portal: the outer arch less the opening (even-odd), on the 32-unit grid; its straight edges lie on even
 * units, whole pixels at 16 px. OUTLINE is the same silhouette as a centre line for a 2-unit stroke.
 */
const PORTAL = 'M2 30V16A14 14 0 0 1 30 16V30ZM10 30V19A6 6 0 0 1 22 19V30Z';
const OUTLINE = 'M3 29V16A13 13 0 0 1 29 16V29H21V19A5 5 0 0 0 11 19V29Z';
/** The passer-by in the opening (volunteering). */
const DOT = { cx: 16, cy: 24.5, r: 3.5 };
/** The closed tunnel (error): the outer arch alone, with a "!" cut out where the opening was. */
const CLOSED = 'M2 30V16A14 14 0 0 1 30 16V30Z';
const BANG = { x: 14, y: 12, width: 4, height: 10, dotY: 24, dotHeight: 4 };
/** The break cut through the top of the arch (reconnecting). */
const BREAK = { x: 14, y: 0, width: 4, height: 16 };

type Tone = 'muted' | 'wait' | 'on' | 'bad' | 'relay';

/**
 * Colours for each toolbar, chosen for at least 3:1 against it (WCAG 1.4.11, non-text contrast), which the
 * tests check against the toolbars listed in TOOLBAR_BACKGROUNDS. Dark toolbars get the light tones.
 */
export const PALETTE: Record<ToolbarTheme, Record<Tone, string>> = {
  light: { muted: '#5f6368', wait: '#b06000', on: '#188038', bad: '#c5221f', relay: '#1967d2' },
  dark: { muted: '#bdc1c6', wait: '#fdd663', on: '#81c995', bad: '#f28b82', relay: '#8ab4f8' },
};

/** Toolbar colours of Chrome's and Firefox's own light and dark themes (old and new), for the tests. */
export const TOOLBAR_BACKGROUNDS: Record<ToolbarTheme, string[]> = {
  light: ['#ffffff', '#f1f3f4', '#f9f9fb'],
  dark: ['#35363a', '#3c3c3c', '#2b2a33', '#202124'],
};

const BRAND = { tile: '#3949ab', mark: '#ffffff' };

function svg(body: string): string {
  return `<svg xmlns="http://www.w3.org/2000/svg" width="32" height="32" viewBox="0 0 32 32">\n${body}\n</svg>\n`;
}

const solid = (color: string) => `  <path d="${PORTAL}" fill="${color}" fill-rule="evenodd"/>`;
const outline = (color: string, dashed: boolean) =>
  `  <path d="${OUTLINE}" fill="none" stroke="${color}" stroke-width="2"` +
  `${dashed ? ' stroke-dasharray="6 4"' : ''}/>`;
const dot = (color: string) => `  <circle cx="${DOT.cx}" cy="${DOT.cy}" r="${DOT.r}" fill="${color}"/>`;

function body(state: ToolbarState, tones: Record<Tone, string>): string {
  switch (state) {
    case 'off':
      return outline(tones.muted, false);
    case 'connecting':
      return outline(tones.wait, true);
    case 'protected':
      return solid(tones.on);
    case 'reconnecting':
      return [
        '  <mask id="break">',
        '    <rect width="32" height="32" fill="#fff"/>',
        `    <rect x="${BREAK.x}" y="${BREAK.y}" width="${BREAK.width}" height="${BREAK.height}" fill="#000"/>`,
        '  </mask>',
        `  <path d="${PORTAL}" fill="${tones.wait}" fill-rule="evenodd" mask="url(#break)"/>`,
      ].join('\n');
    case 'error':
      return [
        '  <mask id="bang">',
        '    <rect width="32" height="32" fill="#fff"/>',
        `    <rect x="${BANG.x}" y="${BANG.y}" width="${BANG.width}" height="${BANG.height}" fill="#000"/>`,
        `    <rect x="${BANG.x}" y="${BANG.dotY}" width="${BANG.width}" height="${BANG.dotHeight}" fill="#000"/>`,
        '  </mask>',
        `  <path d="${CLOSED}" fill="${tones.bad}" mask="url(#bang)"/>`,
      ].join('\n');
    case 'volunteering':
      return [outline(tones.relay, false), dot(tones.relay)].join('\n');
    case 'protected-volunteering':
      return [solid(tones.on), dot(tones.relay)].join('\n');
  }
}

/** A toolbar picture: `theme` is the toolbar it is drawn for. */
export function toolbarIconSvg(state: ToolbarState, theme: ToolbarTheme): string {
  return svg(body(state, PALETTE[theme]));
}

/**
 * The extension's own icon: the white portal on an indigo tile, which reads on any background (menus, the
 * extensions page, the store), so it needs no light and dark variants.
 */
export function brandIconSvg(): string {
  return svg(
    [
      `  <rect x="1" y="1" width="30" height="30" rx="7" fill="${BRAND.tile}"/>`,
      `  <path d="${PORTAL}" transform="translate(5.6 5.6) scale(0.65)" fill="${BRAND.mark}" fill-rule="evenodd"/>`,
    ].join('\n'),
  );
}
