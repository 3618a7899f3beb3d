import { describe, expect, it } from 'vitest';
import { DiskBudget } from '../src/torrent/disk-budget.js';

describe('DiskBudget', () => {
  it('evicts torrents no user holds, least recently used first, only as many as needed', () => {
    const budget = new DiskBudget(100);
    budget.reserve('a', 30, 1);
    budget.reserve('b', 30, 2);
    budget.reserve('c', 30, 3);
    budget.setInUse('a', false, 10);
    budget.setInUse('b', false, 5);
    expect(budget.plan('d', 10)).toEqual([]);
    expect(budget.plan('d', 40)).toEqual(['b']);
    expect(budget.plan('d', 70)).toEqual(['b', 'a']);
    expect(budget.plan('d', 71)).toBeUndefined(); // c is in use
    // A torrent growing its own reservation does not count itself.
    expect(budget.plan('c', 40)).toEqual([]);
    expect(budget.plan('c', 50)).toEqual(['b']);
  });

  it('accounts reservations and releases', () => {
    const budget = new DiskBudget(100);
    budget.reserve('a', 60, 1);
    expect(budget.usedBytes).toBe(60);
    expect(budget.has('a')).toBe(true);
    budget.release('a');
    expect(budget.usedBytes).toBe(0);
    expect(budget.has('a')).toBe(false);
  });
});
