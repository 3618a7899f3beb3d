import { describe, expect, it } from 'vitest';
import { checkSignalingUrl, DEFAULT_SETTINGS, parseSettings } from '../lib/settings';

describe('settings', () => {
  it('accepts ws and wss URLs only', () => {
    expect(checkSignalingUrl(' wss://signal.example.org ')).toEqual({
      ok: true,
      url: 'wss://signal.example.org/',
    });
    expect(checkSignalingUrl('https://signal.example.org').ok).toBe(false);
    expect(checkSignalingUrl('not a url').ok).toBe(false);
    expect(checkSignalingUrl('ws://user:pw@signal.example.org').ok).toBe(false);
  });

  it('falls back to defaults field by field, never trusting what storage holds', () => {
    expect(parseSettings(undefined)).toEqual(DEFAULT_SETTINGS);
    expect(parseSettings('garbage')).toEqual(DEFAULT_SETTINGS);
    expect(parseSettings({ routeLoopback: true })).toEqual({ ...DEFAULT_SETTINGS, routeLoopback: true });
    expect(parseSettings({ signalingUrl: 'javascript:alert(1)' }).signalingUrl).toBe(
      DEFAULT_SETTINGS.signalingUrl,
    );
    expect(parseSettings({ volunteerCapacity: 10_000 })).toEqual(DEFAULT_SETTINGS);
    expect(DEFAULT_SETTINGS.routeLoopback).toBe(false);
  });

  it('keeps a valid pairing, drops a malformed one, and never lets one bad field reset the others', () => {
    const pairing = { dataPort: 4100, socksPort: 1090, secret: 'a'.repeat(43) };
    expect(parseSettings({ pairing }).pairing).toEqual(pairing);
    expect(parseSettings({ pairing: { ...pairing, dataPort: 70_000 } })).toEqual(DEFAULT_SETTINGS);
    expect(parseSettings({ pairing: { ...pairing, secret: 'short' } }).pairing).toBeUndefined();
    expect(parseSettings({ pairing, volunteerCapacity: 'lots', routeLoopback: true })).toEqual({
      ...DEFAULT_SETTINGS,
      routeLoopback: true,
      pairing,
    });
    expect(DEFAULT_SETTINGS.pairing).toBeUndefined();
  });
});
