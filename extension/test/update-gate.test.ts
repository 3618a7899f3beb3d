import { describe, expect, it } from 'vitest';
import { UpdateGate } from '../lib/update-gate';

/**
 * When a new version of the add-on goes in (Firefox): at once while Protect is off, otherwise when the user
 * turns it off (or Firefox restarts, which the gate leaves to Firefox). Real gate, a recorded stand-in for
 * `runtime.reload()` and storage.
 */

function gateWith(protect: { wanted: boolean }) {
  const applied: number[] = [];
  const recorded: string[] = [];
  const gate = new UpdateGate({
    protectWanted: async () => protect.wanted,
    applyNow: () => applied.push(applied.length + 1),
    recordWaiting: async (version) => {
      recorded.push(version);
    },
  });
  return { gate, applied, recorded };
}

describe('UpdateGate', () => {
  it('puts an update in at once while Protect is off', async () => {
    const { gate, applied, recorded } = gateWith({ wanted: false });
    await gate.updateAvailable({ version: '1.2.3' });
    expect(recorded).toEqual(['1.2.3']);
    expect(applied).toHaveLength(1);
  });

  it('holds an update while Protect is on, and puts it in once Protect is off', async () => {
    const protect = { wanted: true };
    const { gate, applied } = gateWith(protect);
    await gate.updateAvailable({ version: '1.2.3' });
    expect(applied).toHaveLength(0);
    // A change of state that is not the user turning Protect off (it failed, say): still held.
    await gate.protectOff();
    expect(applied).toHaveLength(0);
    protect.wanted = false;
    await gate.protectOff();
    expect(applied).toHaveLength(1);
    // Once only: Firefox unloads the add-on as it puts the new version in.
    await gate.protectOff();
    expect(applied).toHaveLength(1);
  });

  it('does nothing when Protect goes off with no update waiting', async () => {
    const { gate, applied } = gateWith({ wanted: false });
    await gate.protectOff();
    expect(applied).toHaveLength(0);
  });

  it('holds an update whose details it cannot read, without showing them', async () => {
    const protect = { wanted: true };
    const { gate, applied, recorded } = gateWith(protect);
    for (const details of [
      undefined,
      null,
      'x',
      { version: 7 },
      { version: '<b>1</b>' },
      { version: 'x'.repeat(65) },
    ])
      await gate.updateAvailable(details);
    expect(recorded).toEqual([]);
    expect(applied).toHaveLength(0);
    protect.wanted = false;
    await gate.protectOff();
    expect(applied).toHaveLength(1);
  });
});
