/* SPDX-License-Identifier: Apache-2.0 */
/*
 * banned.h - functions that invite overflows or hidden state. Included by
 * every source file through the build (-include), so a use is a compile
 * error, as in git's banned.h.
 */
#ifndef MR_BANNED_H
#define MR_BANNED_H

/*
 * Declare the real functions first: with optimisation glibc's <stdlib.h>
 * defines atoi as an extern inline, which the macro below would mangle if
 * stdlib.h were included after this file.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MR_BANNED(func) sorry_##func##_is_banned_in_mailroom

#undef strcpy
#define strcpy(x, y) MR_BANNED(strcpy)
#undef strcat
#define strcat(x, y) MR_BANNED(strcat)
#undef sprintf
#define sprintf(...) MR_BANNED(sprintf)
#undef strtok
#define strtok(x, y) MR_BANNED(strtok)
#undef gets
#define gets(x) MR_BANNED(gets)
#undef atoi
#define atoi(x) MR_BANNED(atoi)

#endif
