import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { SwitchState } from '../lib/messages';
import {
  brandIconPaths,
  TOOLBAR_STATES,
  TOOLBAR_THEMES,
  toolbarIconPaths,
  toolbarStateFor,
  type ToolbarState,
} from '../lib/toolbar-icon';
import { ToolbarIconPainter, type ToolbarIconRecord } from '../lib/toolbar-icon-painter';

const off: SwitchState = { status: 'off' };
const on: SwitchState = { status: 'on' };
const connecting: SwitchState = { status: 'connecting' };
const reconnecting: SwitchState = { status: 'reconnecting' };
const error: SwitchState = { status: 'error', code: 'companion-missing', reason: 'not installed' };
const paused: SwitchState = { status: 'paused', code: 'monthly-cap', reason: 'cap reached' };

describe('toolbarStateFor', () => {
  it.each<[SwitchState, SwitchState, ToolbarState]>([
    [off, off, 'off'],
    [off, paused, 'off'],
    [off, error, 'off'],
    [off, on, 'volunteering'],
    [off, connecting, 'volunteering'],
    [off, reconnecting, 'volunteering'],
    [connecting, off, 'connecting'],
    [connecting, on, 'connecting'],
    [on, off, 'protected'],
    [on, paused, 'protected'],
    [on, on, 'protected-volunteering'],
    [reconnecting, off, 'reconnecting'],
    [reconnecting, on, 'reconnecting'],
    [error, off, 'error'],
    [error, on, 'error'],
  ])('protect %o, volunteer %o → %s', (protect, volunteer, expected) => {
    expect(toolbarStateFor({ protect, volunteer })).toBe(expected);
  });
});

describe('icon files', () => {
  const publicDir = join(import.meta.dirname, '..', 'public');
  it('every path the background or the manifest names is a file the build copies', () => {
    const paths = [
      ...Object.values(brandIconPaths()),
      ...TOOLBAR_STATES.flatMap((state) =>
        TOOLBAR_THEMES.flatMap((theme) => Object.values(toolbarIconPaths(state, theme))),
      ),
    ];
    expect(paths).toHaveLength(4 + TOOLBAR_STATES.length * 2 * 2);
    expect(new Set(paths).size).toBe(paths.length);
    for (const path of paths) expect(existsSync(join(publicDir, path)), path).toBe(true);
  });
});

/** A painter whose `setIcon` calls wait until the test lets them finish, and record what was painted. */
function harness(options: { failOn?: (path: string) => boolean } = {}) {
  const setIconCalls: string[] = [];
  const records: ToolbarIconRecord[] = [];
  const errors: unknown[] = [];
  const painter = new ToolbarIconPainter({
    setIcon: async ({ path }) => {
      const file = path['16'] ?? '';
      setIconCalls.push(file);
      if (options.failOn?.(file)) throw new Error(`no file ${file}`);
    },
    record: async (record) => {
      records.push(record);
    },
    onError: (e) => errors.push(e),
  });
  return { painter, setIconCalls, records, errors };
}

describe('ToolbarIconPainter', () => {
  it('paints nothing until it knows both the state and the theme', async () => {
    const { painter, setIconCalls } = harness();
    await painter.show('protected');
    expect(setIconCalls).toEqual([]);
    await painter.setTheme('dark');
    expect(setIconCalls).toEqual(['icons/toolbar/protected-dark-16.png']);
  });

  it('records what it painted, with both sizes', async () => {
    const { painter, records } = harness();
    await painter.setTheme('light');
    await painter.show('volunteering');
    expect(records).toEqual([
      {
        state: 'volunteering',
        theme: 'light',
        path: {
          16: 'icons/toolbar/volunteering-light-16.png',
          32: 'icons/toolbar/volunteering-light-32.png',
        },
      },
    ]);
  });

  it('does not set the same picture twice, and follows a theme change', async () => {
    const { painter, setIconCalls } = harness();
    await painter.setTheme('light');
    await painter.show('off');
    await painter.show('off');
    await painter.setTheme('light');
    await painter.setTheme('dark');
    await painter.show('off');
    expect(setIconCalls).toEqual(['icons/toolbar/off-light-16.png', 'icons/toolbar/off-dark-16.png']);
  });

  it('a burst of changes ends on the last one', async () => {
    const { painter, records } = harness();
    void painter.setTheme('light');
    void painter.show('connecting');
    void painter.show('protected');
    await painter.show('protected-volunteering');
    expect(records.at(-1)?.state).toBe('protected-volunteering');
  });

  it('a theme stored before the worker started yields to one reported since', async () => {
    const { painter, records } = harness();
    await painter.show('off');
    await painter.setTheme('dark');
    await painter.setInitialTheme('light');
    expect(records.map((r) => r.theme)).toEqual(['dark']);

    const fresh = harness();
    await fresh.painter.show('off');
    await fresh.painter.setInitialTheme('light');
    expect(fresh.records.map((r) => r.theme)).toEqual(['light']);
  });

  it('a picture that cannot be set is reported, not recorded, and tried again next time', async () => {
    let missing = true;
    const { painter, records, errors, setIconCalls } = harness({ failOn: () => missing });
    await painter.setTheme('light');
    await painter.show('error');
    expect(errors).toHaveLength(1);
    expect(records).toEqual([]);
    missing = false;
    await painter.show('error');
    expect(setIconCalls).toHaveLength(2);
    expect(records.map((r) => r.state)).toEqual(['error']);
  });
});
