import type { SwitchState } from './messages';

/**
 * The toolbar icon: which picture stands for what the extension is doing, and where its PNGs are. The art
 * itself is drawn by `scripts/icon-art.ts` (`npm run icons`), one picture per state and toolbar theme; this
 * module only chooses, so the service worker needs no rasterizer and the choice is unit-tested.
 */

export const TOOLBAR_STATES = [
  'off',
  'connecting',
  'protected',
  'reconnecting',
  'error',
  'volunteering',
  'protected-volunteering',
] as const;
export type ToolbarState = (typeof TOOLBAR_STATES)[number];

/** The toolbar a picture is drawn for: dark marks on a light toolbar, light marks on a dark one. */
export const TOOLBAR_THEMES = ['light', 'dark'] as const;
export type ToolbarTheme = (typeof TOOLBAR_THEMES)[number];

/** Sizes of each toolbar picture: 16 px, and 32 px for 2× screens. */
export const TOOLBAR_ICON_SIZES = [16, 32] as const;
/** Sizes of the extension's own icon (manifest `icons`: menus, the extensions page, the store). */
export const BRAND_ICON_SIZES = [16, 32, 48, 128] as const;

export type IconPaths = Record<string, string>;

/** Where the packed extension has a toolbar picture (relative to its root, as `action.setIcon` wants). */
export function toolbarIconFile(state: ToolbarState, theme: ToolbarTheme, size: number): string {
  return `icons/toolbar/${state}-${theme}-${size}.png`;
}

export function toolbarIconPaths(state: ToolbarState, theme: ToolbarTheme): IconPaths {
  return Object.fromEntries(TOOLBAR_ICON_SIZES.map((size) => [size, toolbarIconFile(state, theme, size)]));
}

export function brandIconFile(size: number): string {
  return `icons/underpass-${size}.png`;
}

export function brandIconPaths(): IconPaths {
  return Object.fromEntries(BRAND_ICON_SIZES.map((size) => [size, brandIconFile(size)]));
}

const VOLUNTEERING: ReadonlySet<SwitchState['status']> = new Set(['connecting', 'on', 'reconnecting']);

/**
 * The state the icon shows. Protect comes first, as on the badge: it decides what the user's own traffic
 * does, and "reconnecting" (traffic blocked) or "error" (not protected) must not hide behind "volunteering".
 * A volunteer's own trouble (paused at a cap, an error) shows in the popup, not as a red icon that would read
 * as "your traffic is unprotected".
 */
export function toolbarStateFor(input: { protect: SwitchState; volunteer: SwitchState }): ToolbarState {
  const volunteering = VOLUNTEERING.has(input.volunteer.status);
  switch (input.protect.status) {
    case 'connecting':
      return 'connecting';
    case 'reconnecting':
      return 'reconnecting';
    case 'error':
      return 'error';
    case 'on':
      return volunteering ? 'protected-volunteering' : 'protected';
    case 'off':
    case 'paused':
      return volunteering ? 'volunteering' : 'off';
  }
}
