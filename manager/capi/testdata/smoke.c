/* Smoke test of the key manager's C ABI: open, generate, sign, list,
 * delete, and a refused call. Prints the key's JWK and the signature in
 * hex for the Go test to verify, then OK. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "libwscamanager.h"

static int pin_cb(void *user, const char *plugin, const char *reason, char *buf, int cap) {
	(void)user; (void)plugin; (void)reason; (void)buf; (void)cap;
	return -1; /* softkey never asks */
}

static int fail(const char *what, char *err) {
	fprintf(stderr, "%s: %s\n", what, err ? err : "(no error)");
	return 1;
}

int main(int argc, char **argv) {
	if (argc != 2) return 2;
	unsigned char kek[32];
	memset(kek, 7, sizeof kek);
	char *err = NULL;
	uintptr_t m = wsca_manager_open(argv[1], kek, sizeof kek, pin_cb, NULL, &err);
	if (!m) return fail("open", err);

	char *key = wsca_generate_key(m, "{\"Plugin\":\"softkey\"}", &err);
	if (!key) return fail("generate", err);
	/* The KID is the first "KID":"..." member. */
	const char *p = strstr(key, "\"KID\":\"");
	if (!p) return fail("no KID in", key);
	char kid[64] = {0};
	strncpy(kid, p + 7, 43);
	printf("KEY %s\n", key);

	unsigned char digest[32];
	for (int i = 0; i < 32; i++) digest[i] = (unsigned char)i;
	int n = 0;
	unsigned char *sig = wsca_sign(m, kid, digest, sizeof digest, &n, &err);
	if (!sig) return fail("sign", err);
	printf("SIG ");
	for (int i = 0; i < n; i++) printf("%02x", sig[i]);
	printf("\n");
	wsca_free(sig);

	char *list = wsca_list_keys(m, &err);
	if (!list) return fail("list", err);
	printf("LIST %s\n", list);
	wsca_free(list);

	if (wsca_delete_key(m, kid, &err) != 0) return fail("delete", err);
	sig = wsca_sign(m, kid, digest, sizeof digest, &n, &err);
	if (sig || !err || !strstr(err, "KEY_NOT_FOUND")) return fail("sign after delete", err);
	printf("REFUSED %s\n", err);
	wsca_free(err);
	err = NULL;
	if (wsca_sign(0, kid, digest, sizeof digest, &n, &err) || !err) return fail("null handle", err);
	wsca_free(err);

	wsca_free(key);
	wsca_manager_close(m);
	printf("OK\n");
	return 0;
}
