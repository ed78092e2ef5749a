/* The allocation sites with a known heap of tests/test_profile.py's two
 * programs (profile_sites.c): the counts at HEAPTRACE_RATE=1 are in
 * profile_out.c and http_service.c. */
#ifndef HEAPTRACE_TEST_PROFILE_SITES_H
#define HEAPTRACE_TEST_PROFILE_SITES_H

void keep_small(void);   /* 10 x 1000 B, kept */
void churn(void);        /* 20 x 2048 B, 5 of them kept */
void release_some(void); /* frees 4 of keep_small's blocks */
void grow(void);         /* 8 x 4096 B, kept (up to 4096 blocks in all) */

#endif
