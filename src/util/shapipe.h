/*
 * shapipe.h - SHA-256 computed on a second thread, over a ring of buffers.
 *
 * The hooks must hash every byte and compress or decompress it; on two cores
 * the two can run side by side.  The caller takes a buffer, fills it, submits
 * it, and goes on using it read-only (feeding zstd, writing it out) while the
 * hashing thread digests it; buffers come back in order once hashed.  One
 * digest at a time; the pipe and its thread are reused across digests.
 * (Why not a third thread for the writes: src/util/README.md.)
 */
#ifndef WALSHIP_UTIL_SHAPIPE_H
#define WALSHIP_UTIL_SHAPIPE_H

#include <stddef.h>

typedef struct ShaPipe ShaPipe;

/* nbufs buffers of chunk bytes each (nbufs >= 2).  The thread starts at the first submit. */
ShaPipe *sha_pipe_new(size_t chunk, int nbufs);
void sha_pipe_free(ShaPipe *p);

/* Start a new digest (waits until earlier submissions are hashed). */
void sha_pipe_reset(ShaPipe *p);

/*
 * The next buffer to fill, waiting until the hashing thread is done with it.
 * The caller must be done with it too: buffers are handed out round-robin, so
 * a buffer is reused only after nbufs - 1 more have been taken.
 */
unsigned char *sha_pipe_acquire(ShaPipe *p);

/* Hash the first len bytes of the buffer last acquired (len may be 0). */
void sha_pipe_submit(ShaPipe *p, size_t len);

/* Wait for everything submitted and write the digest. */
void sha_pipe_final(ShaPipe *p, unsigned char out[32]);

#endif
