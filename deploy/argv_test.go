package deploy

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// A secret on a command line is readable by anyone who can list processes
// on the node (ps, /proc/PID/cmdline) for as long as the process runs, and
// lands in crash reports and audit logs. Secrets reach processes through
// the environment or a file instead; Redis reads its password from a
// configuration fed on stdin.

// argv0 is the container's whole command line as written: command (or the
// image's entrypoint, left implicit) and args.
func (c container) argv0() []string {
	return append(strs(c.m, "command"), strs(c.m, "args")...)
}

// secretEnvNames are the container's variables that hold a secret: those
// filled from a Secret, and the known secret names whatever their source.
func secretEnvNames(c container) []string {
	names := append([]string{"REDISCLI_AUTH"}, secretVars...)
	for name, e := range c.env() {
		if str(e, "valueFrom", "secretKeyRef", "name") != "" && !slices.Contains(names, name) {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	return names
}

var (
	passwordFlag = regexp.MustCompile(`(^|\s)(--requirepass|--masterauth|--pass|-a)(\s|=|$)`)
	heredocStart = regexp.MustCompile(`<<(-?)\s*['"]?([A-Za-z_][A-Za-z0-9_]*)['"]?`)
	caseWord     = regexp.MustCompile(`\bcase\s+"?\$\{?[A-Za-z_][A-Za-z0-9_]*\}?"?\s+in\b`)
)

// secretArgvProblems reports how argv would put a secret on a command line:
// a Redis password flag, a Kubernetes $(VAR) expansion of a secret, or a
// shell script (sh -c) expanding one into a command's arguments. A shell
// may expand a secret into a here-document (the command reads it on stdin)
// or test it with case (a builtin): neither reaches an argv.
func secretArgvProblems(argv []string, secrets []string) []string {
	var out []string
	for _, a := range argv {
		if m := passwordFlag.FindString(a); m != "" {
			out = append(out, fmt.Sprintf("passes a password as %q on the command line", strings.TrimSpace(m)))
		}
		for _, name := range secrets {
			if strings.Contains(a, "$("+name+")") {
				out = append(out, fmt.Sprintf("$(%s) puts the secret into the command line (Kubernetes expands it before exec)", name))
			}
		}
	}
	if len(argv) >= 3 && slices.Contains([]string{"sh", "bash", "ash", "dash"}, filepath.Base(argv[0])) && argv[1] == "-c" {
		script := shellOutsideStdin(argv[2])
		for _, name := range secrets {
			if regexp.MustCompile(`\$\{?` + name + `\b`).MatchString(script) {
				out = append(out, fmt.Sprintf("the shell script expands $%s into a command's arguments; feed it on stdin (a here-document) instead", name))
			}
		}
	}
	return out
}

// shellOutsideStdin is a shell script without its here-document bodies and
// case words: what is left is what can become some command's arguments.
func shellOutsideStdin(script string) string {
	var keep []string
	delim, strip := "", false
	for _, line := range strings.Split(script, "\n") {
		if delim != "" {
			l := line
			if strip {
				l = strings.TrimLeft(l, "\t")
			}
			if strings.TrimSpace(l) == delim {
				delim = ""
			}
			continue
		}
		if m := heredocStart.FindStringSubmatch(line); m != nil {
			delim, strip = m[2], m[1] == "-"
		}
		keep = append(keep, caseWord.ReplaceAllString(line, "case WORD in"))
	}
	return strings.Join(keep, "\n")
}

// composeSecretArgvProblems applies the check to a compose service: compose
// itself substitutes ${VAR} (one dollar) into the command before the
// container starts; $$ is a literal dollar for the shell.
func composeSecretArgvProblems(s composeService) []string {
	env := s.env()
	secrets := append([]string{"REDISCLI_AUTH"}, secretVars...)
	for k, v := range env {
		for _, sv := range secretVars {
			if strings.Contains(v, "${"+sv) && !slices.Contains(secrets, k) {
				secrets = append(secrets, k)
			}
		}
	}
	slices.Sort(secrets)
	argv := s.command()
	if cmd, ok := s.m["command"].([]any); ok {
		argv = nil
		for _, a := range cmd {
			argv = append(argv, str(a))
		}
	}
	var out []string
	shellArgv := make([]string, len(argv))
	for i, a := range argv {
		outer := strings.ReplaceAll(a, "$$", "")
		for _, name := range secrets {
			if regexp.MustCompile(`\$\{?` + name + `\b`).MatchString(outer) {
				out = append(out, fmt.Sprintf("compose substitutes ${%s} into the command line", name))
			}
		}
		shellArgv[i] = strings.ReplaceAll(a, "$$", "$")
	}
	return append(out, secretArgvProblems(shellArgv, secrets)...)
}

// No container, in the manifests (patches included) or the compose file,
// carries a secret on its command line.
func TestNoSecretsOnCommandLines(t *testing.T) {
	for _, o := range loadKubernetes(t) {
		for _, c := range containers(o) {
			for _, p := range secretArgvProblems(c.argv0(), secretEnvNames(c)) {
				t.Errorf("%s: %s", c, p)
			}
		}
	}
	services := loadCompose(t)
	for _, name := range sortedKeys(services) {
		for _, p := range composeSecretArgvProblems(services[name]) {
			t.Errorf("compose %s: %s", name, p)
		}
	}
}

// The check above must be able to fail, on each way a password reaches a
// command line, and must let the here-document form through.
func TestSecretArgvCheck(t *testing.T) {
	secrets := []string{"REDISCLI_AUTH"}
	bad := map[string][]string{
		"flag":              {"redis-server", "/etc/redis/redis.conf", "--requirepass", "hunter2"},
		"kubernetes expand": {"redis-server", "/etc/redis/redis.conf", "--port", "$(REDISCLI_AUTH)"},
		"shell expand":      {"sh", "-c", `exec redis-server --port 6379 --user "$REDISCLI_AUTH"`},
		"shell braces":      {"sh", "-c", "redis-cli --pass ${REDISCLI_AUTH} ping"},
		"cli flag":          {"redis-cli", "-a", "hunter2", "ping"},
		"after heredoc": {"sh", "-c", "cat <<EOF\nx\nEOF\n" +
			`exec redis-server --pass "$REDISCLI_AUTH"`},
	}
	for name, argv := range bad {
		if len(secretArgvProblems(argv, secrets)) == 0 {
			t.Errorf("%s: %q passed the check", name, argv)
		}
	}
	good := []string{"sh", "-c", `case "$REDISCLI_AUTH" in "") exit 1;; esac
exec redis-server /etc/redis/redis.conf - <<EOF
requirepass "$REDISCLI_AUTH"
EOF`}
	if p := secretArgvProblems(good, secrets); len(p) > 0 {
		t.Errorf("the here-document form failed the check: %v", p)
	}
	compose := composeService{name: "redis", m: map[string]any{
		"command":     []any{"sh", "-c", `exec redis-server --requirepass "${TRELLIS_REDIS_PASSWORD}"`},
		"environment": map[string]any{},
	}}
	if len(composeSecretArgvProblems(compose)) == 0 {
		t.Error("compose interpolation of a secret into the command passed the check")
	}
}
