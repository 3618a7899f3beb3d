import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { Resvg } from '@resvg/resvg-js';
import {
  BRAND_ICON_SIZES,
  brandIconFile,
  TOOLBAR_ICON_SIZES,
  TOOLBAR_STATES,
  TOOLBAR_THEMES,
  toolbarIconFile,
  type ToolbarState,
  type ToolbarTheme,
} from '../extension/lib/toolbar-icon';
import { brandIconSvg, toolbarIconSvg } from './icon-art';

/**
 * Every icon the extension ships: its SVG source (in `extension/icons/`, for people and for review) and the
 * PNGs the browser gets (in `extension/public/icons/`, which the build copies). The PNGs are committed, so
 * building the extension needs no rasterizer; `npm run icons` makes them all again.
 */
export type IconSource = {
  /** What the icon is (a toolbar state and theme, or the brand mark). */
  name: string;
  svg: string;
  svgPath: string;
  pngs: { size: number; path: string }[];
  toolbar?: { state: ToolbarState; theme: ToolbarTheme };
};

const REPO_ROOT = fileURLToPath(new URL('../', import.meta.url));
const SVG_DIR = join(REPO_ROOT, 'extension', 'icons');
const PUBLIC_DIR = join(REPO_ROOT, 'extension', 'public');

export function iconSources(): IconSource[] {
  const brand: IconSource = {
    name: 'underpass',
    svg: brandIconSvg(),
    svgPath: join(SVG_DIR, 'underpass.svg'),
    pngs: BRAND_ICON_SIZES.map((size) => ({ size, path: join(PUBLIC_DIR, brandIconFile(size)) })),
  };
  const toolbar = TOOLBAR_STATES.flatMap((state) =>
    TOOLBAR_THEMES.map((theme): IconSource => ({
      name: `${state}-${theme}`,
      svg: toolbarIconSvg(state, theme),
      svgPath: join(SVG_DIR, 'toolbar', `${state}-${theme}.svg`),
      pngs: TOOLBAR_ICON_SIZES.map((size) => ({
        size,
        path: join(PUBLIC_DIR, toolbarIconFile(state, theme, size)),
      })),
      toolbar: { state, theme },
    })),
  );
  return [brand, ...toolbar];
}

export type Rendered = { png: Buffer; rgba: Buffer; width: number; height: number };

/** The SVG rasterized at `size` px square; `background` fills behind it (the tests use a toolbar's colour). */
export function renderIcon(svg: string, size: number, background?: string): Rendered {
  const image = new Resvg(svg, {
    fitTo: { mode: 'width', value: size },
    ...(background ? { background } : {}),
  }).render();
  return { png: image.asPng(), rgba: image.pixels, width: image.width, height: image.height };
}
