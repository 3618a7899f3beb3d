import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TOOLBAR_THEMES, type ToolbarTheme } from '../extension/lib/toolbar-icon';
import { PALETTE, TOOLBAR_BACKGROUNDS } from '../scripts/icon-art';
import { iconSources, renderIcon } from '../scripts/icon-files';

/**
 * The icons: the committed SVGs and PNGs are what the art makes (run `npm run icons` after changing it), every
 * toolbar state stays distinct from every other at 16 px even in grey (colour is not the only difference),
 * and the marks keep 3:1 contrast against the toolbars they are drawn for (WCAG 1.4.11).
 */

const sources = iconSources();

describe('committed icon files', () => {
  it.each(sources.map((source) => [source.name, source] as const))('%s matches the art', (_name, source) => {
    expect(readFileSync(source.svgPath, 'utf8')).toBe(source.svg);
    for (const png of source.pngs) {
      const committed = readFileSync(png.path);
      const fresh = renderIcon(source.svg, png.size).png;
      expect(committed.equals(fresh), `${png.path} is stale: run npm run icons`).toBe(true);
    }
  });
});

function hexToRgb(hex: string): [number, number, number] {
  const n = Number.parseInt(hex.slice(1), 16);
  return [(n >> 16) & 255, (n >> 8) & 255, n & 255];
}

/** WCAG relative luminance of 8-bit sRGB. */
function luminance([r, g, b]: readonly number[]): number {
  const lin = (c: number) => {
    const s = c / 255;
    return s <= 0.04045 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
  };
  return 0.2126 * lin(r ?? 0) + 0.7152 * lin(g ?? 0) + 0.0722 * lin(b ?? 0);
}

function contrast(a: string, b: string): number {
  const [hi, lo] = [luminance(hexToRgb(a)), luminance(hexToRgb(b))].sort((x, y) => y - x) as [number, number];
  return (hi + 0.05) / (lo + 0.05);
}

/** The 16 px picture on a toolbar colour, as one luminance per pixel. */
function greyPixels(svg: string, background: string): number[] {
  const { rgba } = renderIcon(svg, 16, background);
  const grey: number[] = [];
  for (let i = 0; i < rgba.length; i += 4) grey.push(luminance([rgba[i]!, rgba[i + 1]!, rgba[i + 2]!]));
  return grey;
}

/** Pixels whose luminance differs by more than a fifth of the range: a difference the eye sees in grey. */
const MIN_DIFFERENT_PIXELS = 6;
const LUMINANCE_STEP = 0.2;

describe.each(TOOLBAR_THEMES.map((theme) => [theme] as const))('toolbar icons for a %s toolbar', (theme) => {
  const pictures = sources.filter((source) => source.toolbar?.theme === theme);

  it('has one picture per state', () => {
    expect(pictures).toHaveLength(7);
  });

  it.each(TOOLBAR_BACKGROUNDS[theme].map((background) => [background] as const))(
    'every state differs from every other at 16 px in grey, on %s',
    (background) => {
      const grey = pictures.map((picture) => ({
        name: picture.name,
        pixels: greyPixels(picture.svg, background),
      }));
      for (const [i, a] of grey.entries()) {
        for (const b of grey.slice(i + 1)) {
          const different = a.pixels.filter(
            (value, k) => Math.abs(value - (b.pixels[k] ?? 0)) > LUMINANCE_STEP,
          );
          expect(different.length, `${a.name} vs ${b.name}`).toBeGreaterThanOrEqual(MIN_DIFFERENT_PIXELS);
        }
      }
    },
  );

  it('every colour has 3:1 contrast with the toolbar', () => {
    for (const background of TOOLBAR_BACKGROUNDS[theme as ToolbarTheme]) {
      for (const [tone, color] of Object.entries(PALETTE[theme])) {
        expect(contrast(color, background), `${tone} ${color} on ${background}`).toBeGreaterThanOrEqual(3);
      }
    }
  });
});
