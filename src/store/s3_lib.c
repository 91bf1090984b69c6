/*
 * s3_lib.c - loading libcurl and libxml2 for the S3 driver (see s3_lib.h).
 *
 * Both are opened RTLD_NOW, so that a library missing one of its own
 * dependencies fails here with the loader's words rather than at the first
 * request, and once loaded never closed: libcurl keeps global state (its TLS
 * backend) for the life of the process.
 */
#include "store/s3_lib.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#define S3_LIB_HINT "Install libcurl4 and libxml2 (apt-get install libcurl4 libxml2)."

S3Lib s3_lib;

typedef struct Sym {
	const char *name;
	size_t offset; /* of its pointer in S3Lib */
} Sym;

static const Sym curl_syms[] = {
	{"curl_global_init", offsetof(S3Lib, global_init)},
	{"curl_easy_init", offsetof(S3Lib, easy_init)},
	{"curl_easy_cleanup", offsetof(S3Lib, easy_cleanup)},
	{"curl_easy_reset", offsetof(S3Lib, easy_reset)},
	{"curl_easy_perform", offsetof(S3Lib, easy_perform)},
	{"curl_easy_setopt", offsetof(S3Lib, easy_setopt)},
	{"curl_easy_getinfo", offsetof(S3Lib, easy_getinfo)},
	{"curl_easy_strerror", offsetof(S3Lib, easy_strerror)},
	{"curl_slist_append", offsetof(S3Lib, slist_append)},
	{"curl_slist_free_all", offsetof(S3Lib, slist_free_all)},
	{"curl_version_info", offsetof(S3Lib, version_info)},
};

static const Sym libxml2_syms[] = {
	{"xmlInitParser", offsetof(S3Lib, init_parser)},
	{"xmlReadMemory", offsetof(S3Lib, read_memory)},
	{"xmlDocGetRootElement", offsetof(S3Lib, doc_get_root_element)},
	{"xmlNodeGetContent", offsetof(S3Lib, node_get_content)},
	{"xmlFreeDoc", offsetof(S3Lib, free_doc)},
	{"xmlFree", offsetof(S3Lib, free_var)}, /* a variable: its address */
};

static pthread_once_t load_once = PTHREAD_ONCE_INIT;
static int load_rc;
static WsError load_err;

/* dlerror's text, which names the file and the reason, as the detail line. */
static void loader_detail(WsError *err)
{
	const char *e = dlerror();
	ws_error_detail(err, "The dynamic loader said: %s.", e ? e : "no reason given");
}

/*
 * Open one library and fill its pointers.  POSIX defines dlsym's void * as
 * convertible to a function pointer; memcpy stores it without a cast that
 * ISO C does not define.
 */
static int load_one(const char *what, const char *name, const Sym *syms, size_t n, WsError *err)
{
	void *h = dlopen(name, RTLD_NOW | RTLD_LOCAL);
	if (h == NULL) {
		ws_error(err, WS_FATAL, "could not load %s (\"%s\"), which S3 repositories need", what, name);
		loader_detail(err);
		ws_error_hint(err, S3_LIB_HINT);
		return WS_FATAL;
	}
	for (size_t i = 0; i < n; i++) {
		dlerror();
		void *sym = dlsym(h, syms[i].name);
		if (sym == NULL) {
			ws_error(err, WS_FATAL, "could not load %s (\"%s\"): it lacks \"%s\"", what, name,
				 syms[i].name);
			loader_detail(err);
			ws_error_hint(err, S3_LIB_HINT);
			dlclose(h);
			return WS_FATAL;
		}
		memcpy((char *)&s3_lib + syms[i].offset, &sym, sizeof(sym));
	}
	return 0;
}

#ifdef WALSHIP_TESTING
/* The file a test names in variable env instead of soname (s3_lib.h). */
static const char *test_name(const char *env, const char *soname)
{
	const char *name = secure_getenv(env);
	return name != NULL && name[0] != '\0' ? name : soname;
}
#endif

static void load(void)
{
	const char *curl = S3_LIB_CURL_SONAME, *libxml2 = S3_LIB_LIBXML2_SONAME;
#ifdef WALSHIP_TESTING
	curl = test_name(S3_LIB_TEST_CURL_ENV, curl);
	libxml2 = test_name(S3_LIB_TEST_LIBXML2_ENV, libxml2);
#endif
	ws_error_clear(&load_err);
	load_rc = load_one("libcurl", curl, curl_syms, sizeof(curl_syms) / sizeof(curl_syms[0]), &load_err);
	if (load_rc == 0)
		load_rc = load_one("libxml2", libxml2, libxml2_syms,
				   sizeof(libxml2_syms) / sizeof(libxml2_syms[0]), &load_err);
	if (load_rc != 0) {
		/* A half-filled table must not be used by mistake. */
		memset(&s3_lib, 0, sizeof(s3_lib));
		return;
	}
	/*
	 * Neither curl_global_init (7.88) nor libxml2's initialization, otherwise run lazily by
	 * the first parse, may run in two threads at once, and parallel push opens stores in threads.
	 */
	CURLcode c = s3_lib.global_init(CURL_GLOBAL_DEFAULT);
	if (c != CURLE_OK) {
		load_rc = ws_error(&load_err, WS_FATAL, "could not initialize libcurl: %s",
				   s3_lib.easy_strerror(c));
		memset(&s3_lib, 0, sizeof(s3_lib));
		return;
	}
	s3_lib.init_parser();
	const curl_version_info_data *v = s3_lib.version_info(CURLVERSION_NOW);
	s3_lib.curl_version = v != NULL ? v->version_num : 0;
}

int s3_lib_load(WsError *err)
{
	pthread_once(&load_once, load);
	if (load_rc != 0 && err != NULL)
		*err = load_err;
	return load_rc;
}
