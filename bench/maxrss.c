/* SPDX-License-Identifier: Apache-2.0 */
/*
 * maxrss: runs a command and writes its peak RSS for the parse benchmark.
 *
 *   maxrss OUTFILE COMMAND [ARG...]
 *
 * Writes "<peak RSS in KiB> <exit status>\n" to OUTFILE and exits with the
 * command's status. Why not wait4() in the Python driver: on Linux a child's
 * ru_maxrss includes the RSS of the process it was forked from, up to its
 * exec, so every parser would show the driver's 50 MB. Forked from this
 * small program, the error is this program's own few hundred KiB.
 */
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

int
main(int argc, char **argv)
{
    struct rusage ru;
    pid_t pid;
    int status = 0;
    int code;
    FILE *out;

    if (argc < 3) {
        fputs("usage: maxrss OUTFILE COMMAND [ARG...]\n", stderr);
        return 64;
    }
    pid = fork();
    if (pid < 0) {
        perror("fork");
        return 71;
    }
    if (pid == 0) {
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("wait4");
        return 71;
    }
    code = WIFEXITED(status) ? WEXITSTATUS(status)
                             : 128 + WTERMSIG(status);
    out = fopen(argv[1], "w");
    if (out == NULL) {
        perror(argv[1]);
        return 73;
    }
    fprintf(out, "%ld %d\n", ru.ru_maxrss, code);
    fclose(out);
    return code;
}
