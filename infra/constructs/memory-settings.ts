/**
 * How the function's process holds memory (and the bench's, which measures it).
 *
 * A COPY passes through Node.js in socket reads of up to 64 KB, each a buffer that lives until
 * the collection after its rows are read. The engine's streams allocate little else, so with the
 * 16 MB semi-spaces Node.js 24 chooses in a 1 GiB function, 30-36 MB of read buffers waited for
 * a collection in a comparison of a million key hashes; with 2 MB they were 3-10 MB, and the runs
 * took no longer (bench, composite shape, 2026-12-07).
 */
export const YOUNG_GENERATION_OPTION = '--max-semi-space-size=2';

/**
 * glibc's allocator settings. By default glibc raises its trim and mmap thresholds as large
 * blocks come and go, and then keeps the freed memory: a warm process's RSS only grows, to the
 * largest run it ever made and more (the bench measured 152-205 MB for runs that hold 90-150).
 * Fixed at 128 KB, large blocks are mapped and unmapped on their own and the heap's free top is
 * given back.
 */
export const ALLOCATOR_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
