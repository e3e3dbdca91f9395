/**
 * glibc's allocator settings for the function's process (and the bench's, which measures it).
 *
 * A COPY passes through Node.js in socket reads of up to 64 KB, each a buffer freed at V8's next
 * collection. By default glibc raises its trim and mmap thresholds as large blocks come and go, and
 * then keeps the freed memory: a warm process's RSS only grows, to the largest run it ever made
 * and more (the bench measured 152-205 MB for runs that hold 90-150). Fixed at 128 KB, large
 * blocks are mapped and unmapped on their own and the heap's free top is given back.
 */
export const ALLOCATOR_ENVIRONMENT: Readonly<Record<string, string>> = {
  MALLOC_MMAP_THRESHOLD_: '131072',
  MALLOC_TRIM_THRESHOLD_: '131072',
};
