/*
 * crc32c.c - CRC-32C with the SSE4.2 crc32 instruction where the CPU has it,
 * else a slicing-by-8 table (computed once).
 */
#include "util/crc32c.h"

#include <pthread.h>
#include <string.h>

static uint32_t table[8][256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

static void table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[0][i] = c;
	}
	for (uint32_t i = 0; i < 256; i++)
		for (int t = 1; t < 8; t++)
			table[t][i] = (table[t - 1][i] >> 8) ^ table[0][table[t - 1][i] & 0xFF];
}

static uint32_t crc_soft(uint32_t crc, const unsigned char *p, size_t len)
{
	pthread_once(&table_once, table_init);
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		w ^= crc; /* little-endian hosts only: walship targets x86-64 and arm64 Linux */
		crc = table[7][w & 0xFF] ^ table[6][(w >> 8) & 0xFF] ^ table[5][(w >> 16) & 0xFF] ^
		      table[4][(w >> 24) & 0xFF] ^ table[3][(w >> 32) & 0xFF] ^ table[2][(w >> 40) & 0xFF] ^
		      table[1][(w >> 48) & 0xFF] ^ table[0][w >> 56];
		p += 8;
		len -= 8;
	}
	while (len--)
		crc = (crc >> 8) ^ table[0][(crc ^ *p++) & 0xFF];
	return crc;
}

#if defined(__x86_64__)
__attribute__((target("sse4.2"))) static uint32_t crc_sse42(uint32_t crc, const unsigned char *p, size_t len)
{
	uint64_t c = crc;
	while (len >= 8) {
		uint64_t w;
		memcpy(&w, p, 8);
		c = __builtin_ia32_crc32di(c, w);
		p += 8;
		len -= 8;
	}
	uint32_t c32 = (uint32_t)c;
	while (len--)
		c32 = __builtin_ia32_crc32qi(c32, *p++);
	return c32;
}
#endif

uint32_t crc32c_update(uint32_t crc, const void *data, size_t len)
{
#if defined(__x86_64__)
	static int have_sse42 = -1;
	if (have_sse42 < 0)
		have_sse42 = __builtin_cpu_supports("sse4.2") ? 1 : 0;
	if (have_sse42)
		return crc_sse42(crc, data, len);
#endif
	return crc_soft(crc, data, len);
}

uint32_t crc32c(const void *data, size_t len)
{
	return crc32c_final(crc32c_update(CRC32C_INIT, data, len));
}
