/*
 * shapipe.c - SHA-256 on a second thread.  The ring discipline: the thread
 * hashes in submission order, so buffer submitted % nbufs is free when fewer
 * than nbufs submissions are pending.
 */
#include "util/shapipe.h"

#include <openssl/evp.h>
#include <openssl/opensslv.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "util/cleanup.h"
#include "util/mem.h"

struct ShaPipe {
	pthread_mutex_t mu;
	pthread_cond_t work; /* signalled on submit and quit */
	pthread_cond_t done; /* signalled when a buffer is hashed */
	pthread_t thread;
	bool started;
	bool quit;
	size_t chunk;
	int nbufs;
	unsigned char **bufs;
	size_t *lens;
	uint64_t submitted; /* buffers handed to the thread */
	uint64_t hashed;    /* buffers the thread finished */
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD *md; /* fetched once: EVP_sha256() would make OpenSSL 3 look its provider up at each init */
#else
	const EVP_MD *md; /* OpenSSL 1.1's static table entry: no look-up to spare */
#endif
	EVP_MD_CTX *ctx; /* the thread's while work is pending, the caller's when idle */
};

static void fatal(const char *what)
{
	cleanup_fatal("%s", what);
}

static void *hash_thread(void *arg)
{
	ShaPipe *p = arg;
	pthread_mutex_lock(&p->mu);
	for (;;) {
		if (p->hashed < p->submitted) {
			int i = (int)(p->hashed % (uint64_t)p->nbufs);
			pthread_mutex_unlock(&p->mu);
			if (EVP_DigestUpdate(p->ctx, p->bufs[i], p->lens[i]) != 1)
				fatal("could not compute SHA-256");
			pthread_mutex_lock(&p->mu);
			p->hashed++;
			pthread_cond_signal(&p->done);
			continue;
		}
		if (p->quit)
			break;
		pthread_cond_wait(&p->work, &p->mu);
	}
	pthread_mutex_unlock(&p->mu);
	return NULL;
}

ShaPipe *sha_pipe_new(size_t chunk, int nbufs)
{
	ShaPipe *p = xcalloc(1, sizeof(*p));
	pthread_mutex_init(&p->mu, NULL);
	pthread_cond_init(&p->work, NULL);
	pthread_cond_init(&p->done, NULL);
	p->chunk = chunk;
	p->nbufs = nbufs < 2 ? 2 : nbufs;
	p->bufs = xcalloc((size_t)p->nbufs, sizeof(*p->bufs));
	p->lens = xcalloc((size_t)p->nbufs, sizeof(*p->lens));
	for (int i = 0; i < p->nbufs; i++)
		p->bufs[i] = xmalloc(chunk);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	p->md = EVP_MD_fetch(NULL, "SHA256", NULL);
#else
	p->md = EVP_sha256();
#endif
	p->ctx = EVP_MD_CTX_new();
	if (p->md == NULL || p->ctx == NULL || EVP_DigestInit_ex(p->ctx, p->md, NULL) != 1)
		fatal("could not initialise SHA-256");
	return p;
}

static void wait_idle(ShaPipe *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->hashed < p->submitted)
		pthread_cond_wait(&p->done, &p->mu);
	pthread_mutex_unlock(&p->mu);
}

void sha_pipe_free(ShaPipe *p)
{
	if (p == NULL)
		return;
	if (p->started) {
		pthread_mutex_lock(&p->mu);
		p->quit = true;
		pthread_cond_signal(&p->work);
		pthread_mutex_unlock(&p->mu);
		pthread_join(p->thread, NULL);
	}
	for (int i = 0; i < p->nbufs; i++)
		free(p->bufs[i]);
	free(p->bufs);
	free(p->lens);
	EVP_MD_CTX_free(p->ctx);
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
	EVP_MD_free(p->md);
#endif
	pthread_cond_destroy(&p->work);
	pthread_cond_destroy(&p->done);
	pthread_mutex_destroy(&p->mu);
	free(p);
}

void sha_pipe_reset(ShaPipe *p)
{
	wait_idle(p);
	if (EVP_DigestInit_ex(p->ctx, p->md, NULL) != 1)
		fatal("could not initialise SHA-256");
}

unsigned char *sha_pipe_acquire(ShaPipe *p)
{
	pthread_mutex_lock(&p->mu);
	while (p->submitted - p->hashed >= (uint64_t)p->nbufs)
		pthread_cond_wait(&p->done, &p->mu);
	unsigned char *buf = p->bufs[p->submitted % (uint64_t)p->nbufs];
	pthread_mutex_unlock(&p->mu);
	return buf;
}

void sha_pipe_submit(ShaPipe *p, size_t len)
{
	if (!p->started) {
		/* Signals stay with the main thread: the cleanup handlers run there. */
		sigset_t all, old;
		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &old);
		int rc = pthread_create(&p->thread, NULL, hash_thread, p);
		pthread_sigmask(SIG_SETMASK, &old, NULL);
		if (rc != 0)
			fatal("could not start the hashing thread");
		p->started = true;
	}
	pthread_mutex_lock(&p->mu);
	p->lens[p->submitted % (uint64_t)p->nbufs] = len;
	p->submitted++;
	pthread_cond_signal(&p->work);
	pthread_mutex_unlock(&p->mu);
}

void sha_pipe_final(ShaPipe *p, unsigned char out[32])
{
	unsigned int len = 0;
	wait_idle(p);
	if (EVP_DigestFinal_ex(p->ctx, out, &len) != 1)
		fatal("could not compute SHA-256");
}
