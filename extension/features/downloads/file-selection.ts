import { MAX_LISTED_FILES } from './downloads-messages';

/**
 * The user's file choice as `downloads-select` takes it: the indices wanted, or `[]` for every file. A choice
 * of no file at all cannot be said that way (and would be a pause anyway), so it is refused.
 */
export function selectionCommandFiles(
  selected: ReadonlySet<number>,
  fileCount: number,
): number[] | undefined {
  if (selected.size === 0) return undefined;
  if (selected.size >= fileCount && [...Array(fileCount).keys()].every((index) => selected.has(index)))
    return [];
  return [...selected].filter((index) => index >= 0 && index < fileCount).sort((a, b) => a - b);
}

/** The set after the user turned one file on or off. */
export function toggled(selected: ReadonlySet<number>, index: number, on: boolean): Set<number> {
  const next = new Set(selected);
  if (on) next.add(index);
  else next.delete(index);
  return next;
}

/**
 * Whether the page can offer per-file choice: not when the list was cut at MAX_LISTED_FILES, since the page
 * cannot name the files past it (choosing among the first ones would drop the rest without the user seeing).
 * `fileCount` is known for a .torrent the page read; for the host's rows, a full list may have been cut.
 */
export function canChooseFiles(listedFiles: number, fileCount?: number): boolean {
  if (fileCount === undefined) return listedFiles > 1 && listedFiles < MAX_LISTED_FILES;
  return fileCount > 1 && listedFiles === fileCount;
}
