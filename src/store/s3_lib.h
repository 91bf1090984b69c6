/*
 * s3_lib.h - libcurl and libxml2 for the S3 driver, loaded with dlopen when
 * S3 is first used instead of being linked into the programs: linked, they
 * cost every start of the hooks about 3 ms (src/store/README.md, also for what
 * the packages must declare).  Their headers are still used for types and
 * constants.
 */
#ifndef WALSHIP_STORE_S3_LIB_H
#define WALSHIP_STORE_S3_LIB_H

#include <curl/curl.h>
#include <libxml/parser.h>
#include <libxml/tree.h>

#include "util/error.h"

/* The sonames loaded (the ABI the headers describe). */
#define S3_LIB_CURL_SONAME    "libcurl.so.4"
#define S3_LIB_LIBXML2_SONAME "libxml2.so.2"

#ifdef WALSHIP_TESTING
/*
 * Test build only: these environment variables, when set and not empty,
 * replace the sonames above (a path or another name), so that tests can make
 * loading fail.  Ignored in set-user-id programs (secure_getenv).
 */
#define S3_LIB_TEST_CURL_ENV    "WALSHIP_TEST_LIBCURL"
#define S3_LIB_TEST_LIBXML2_ENV "WALSHIP_TEST_LIBXML2"
#endif

/*
 * Exactly the functions the S3 driver uses, named after them without their
 * prefixes, and the version of the libcurl loaded.
 */
typedef struct S3Lib {
	CURLcode (*global_init)(long flags);
	CURL *(*easy_init)(void);
	void (*easy_cleanup)(CURL *curl);
	void (*easy_reset)(CURL *curl);
	CURLcode (*easy_perform)(CURL *curl);
	CURLcode (*easy_setopt)(CURL *curl, CURLoption option, ...);
	CURLcode (*easy_getinfo)(CURL *curl, CURLINFO info, ...);
	const char *(*easy_strerror)(CURLcode code);
	struct curl_slist *(*slist_append)(struct curl_slist *list, const char *string);
	void (*slist_free_all)(struct curl_slist *list);
	curl_version_info_data *(*version_info)(CURLversion age);
	/* version_num of the libcurl loaded (0x074a00 is 7.74.0), which may not be the headers' */
	unsigned int curl_version;

	void (*init_parser)(void);
	xmlDocPtr (*read_memory)(const char *buffer, int size, const char *url, const char *encoding,
				 int options);
	xmlNodePtr (*doc_get_root_element)(const xmlDoc *doc);
	xmlChar *(*node_get_content)(const xmlNode *node);
	void (*free_doc)(xmlDocPtr doc);
	/* libxml2's xmlFree is a variable holding the function: its address, read at each call. */
	xmlFreeFunc *free_var;
} S3Lib;

/* Filled by s3_lib_load; read only after it returned 0. */
extern S3Lib s3_lib;

/*
 * Load both libraries, look up every function, then run curl_global_init
 * and xmlInitParser: once per process (pthread_once), whichever thread comes
 * first; later calls return the first result.  0, or WS_FATAL naming the
 * library, with the loader's words as detail and what to install as hint.
 * Every S3 code path calls it before its first libcurl or libxml2 call.
 */
int s3_lib_load(WsError *err);

/*
 * curl_easy_setopt and curl_easy_getinfo through the table.  (curl.h's
 * type-checking macros of the same names are left unused; with curl 7.88
 * and GCC 12 they check nothing anyway.)
 */
#define s3_curl_setopt(c, opt, val)   s3_lib.easy_setopt((c), (opt), (val))
#define s3_curl_getinfo(c, info, out) s3_lib.easy_getinfo((c), (info), (out))

/* xmlFree(p) through the table. */
static inline void s3_xml_free(void *p)
{
	(*s3_lib.free_var)(p);
}

#endif
