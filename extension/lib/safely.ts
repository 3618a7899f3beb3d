/** Runs one step of a teardown so that the steps after it run even if it throws; the failure is logged. */
export function safely(release: () => void): void {
  try {
    release();
  } catch (error) {
    console.warn('underpass: cleanup failed', error);
  }
}
