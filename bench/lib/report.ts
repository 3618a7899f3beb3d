import { mkdir, writeFile } from 'node:fs/promises';
import { cpus } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** One figure, as DESIGN.md's benchmark JSON has it. */
export type BenchResult = {
  metric: string;
  value: number;
  unit: string;
  runs: number;
  baseline?: { metric: string; value: number };
  ratio?: number;
  /** A figure over time (bench:wan: Mbit/s in each second of a download). */
  series?: { unit: string; values: number[] };
};

/** An issue's goal for a metric: how it reads, and whether a value meets it. */
export type Goal = { text: string; met: (value: number) => boolean };

const RESULTS_DIR = fileURLToPath(new URL('../results/', import.meta.url));

/**
 * Prints the table for people and writes bench/results/<name>.json for machines. Returns the metrics whose goal
 * was missed, for runs that are also checks (chaos `--check`).
 */
export async function report(
  name: string,
  results: BenchResult[],
  goals: Record<string, Goal> = {},
): Promise<string[]> {
  const rows = results.map((r) => {
    const goal = goals[r.metric];
    return [
      r.metric,
      String(r.value),
      r.unit,
      String(r.runs),
      r.baseline ? `${r.baseline.metric} ${r.baseline.value}` : '',
      goal ? `${goal.text} ${goal.met(r.value) ? 'met' : 'MISSED'}` : '',
    ];
  });
  const header = ['metric', 'value', 'unit', 'runs', 'baseline', 'goal'];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => row[i]!.length)));
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => (i === 1 || i === 3 ? cell.padStart(widths[i]!) : cell.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  console.log('');
  console.log(line(header));
  for (const row of rows) console.log(line(row));

  await mkdir(RESULTS_DIR, { recursive: true });
  const file = join(RESULTS_DIR, `${name}.json`);
  const json = {
    name,
    when: new Date().toISOString(),
    machine: { cpus: cpus().length, node: process.version },
    results,
  };
  await writeFile(file, JSON.stringify(json, null, 2) + '\n');
  console.log(`\nwrote ${file}`);
  return results.filter((r) => goals[r.metric]?.met(r.value) === false).map((r) => r.metric);
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[middle]! : (sorted[middle - 1]! + sorted[middle]!) / 2;
}
