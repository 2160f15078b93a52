package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// object is one decoded YAML document of a Kubernetes manifest.
type object struct {
	file  string // path relative to deploy/
	index int    // document number in the file, from 0
	patch bool   // listed under a kustomization's patches: a fragment
	m     map[string]any
}

func (o object) String() string {
	return fmt.Sprintf("%s#%d %s/%s", o.file, o.index, o.kind(), o.name())
}

func (o object) kind() string { return str(o.m, "kind") }
func (o object) name() string { return str(o.m, "metadata", "name") }

// loadKubernetes decodes every YAML document under deploy/kubernetes.
func loadKubernetes(t *testing.T) []object {
	t.Helper()
	patches := make(map[string]bool)
	var files []string
	err := filepath.WalkDir("kubernetes", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || !(strings.HasSuffix(path, ".yaml") || strings.HasSuffix(path, ".yml")) {
			return nil
		}
		files = append(files, path)
		return nil
	})
	if err != nil {
		t.Fatalf("walk kubernetes: %v", err)
	}
	if len(files) == 0 {
		t.Fatal("no manifests under deploy/kubernetes")
	}
	// Kustomizations first: they say which files are patches (fragments)
	// and which are generator inputs (data, not manifests).
	isKustomization := func(f string) bool {
		base := filepath.Base(f)
		return base == "kustomization.yaml" || base == "kustomization.yml"
	}
	data := make(map[string]bool)
	var objs []object
	for _, f := range files {
		if !isKustomization(f) {
			continue
		}
		for i, d := range decodeAll(t, f) {
			objs = append(objs, object{file: f, index: i, m: d})
			rel := func(p string) string { return filepath.Join(filepath.Dir(f), p) }
			for _, p := range list(d, "patches") {
				if path := str(p, "path"); path != "" {
					patches[rel(path)] = true
				}
			}
			for _, p := range strs(d, "patchesStrategicMerge") {
				patches[rel(p)] = true
			}
			for _, key := range []string{"configMapGenerator", "secretGenerator"} {
				for _, g := range list(d, key) {
					for _, src := range append(strs(g, "files"), strs(g, "envs")...) {
						if _, path, ok := strings.Cut(src, "="); ok {
							src = path
						}
						data[rel(src)] = true
					}
				}
			}
		}
	}
	for _, f := range files {
		if isKustomization(f) || data[f] {
			continue
		}
		for i, d := range decodeAll(t, f) {
			objs = append(objs, object{file: f, index: i, m: d})
		}
	}
	for i := range objs {
		objs[i].patch = patches[objs[i].file]
	}
	return objs
}

// decodeAll decodes every document of a YAML file. Empty documents are
// dropped.
func decodeAll(t *testing.T, path string) []map[string]any {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read %s: %v", path, err)
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var m map[string]any
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			return out
		}
		if err != nil {
			t.Fatalf("%s: document %d: %v", path, len(out), err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// at walks a decoded YAML tree along keys (map keys or list indexes).
func at(v any, path ...any) any {
	for _, p := range path {
		switch k := p.(type) {
		case string:
			m, ok := v.(map[string]any)
			if !ok {
				return nil
			}
			v = m[k]
		case int:
			l, ok := v.([]any)
			if !ok || k >= len(l) {
				return nil
			}
			v = l[k]
		}
	}
	return v
}

func str(v any, path ...any) string {
	switch s := at(v, path...).(type) {
	case string:
		return s
	case int:
		return strconv.Itoa(s)
	case bool:
		return strconv.FormatBool(s)
	}
	return ""
}

func list(v any, path ...any) []any {
	l, _ := at(v, path...).([]any)
	return l
}

func dict(v any, path ...any) map[string]any {
	m, _ := at(v, path...).(map[string]any)
	return m
}

func strs(v any, path ...any) []string {
	var out []string
	for _, e := range list(v, path...) {
		out = append(out, str(e))
	}
	return out
}

// intOf reads an int that YAML may give as a number or a string.
func intOf(v any, path ...any) (int, bool) {
	switch n := at(v, path...).(type) {
	case int:
		return n, true
	case float64: // JSON
		return int(n), n == float64(int(n))
	case string:
		i, err := strconv.Atoi(n)
		return i, err == nil
	}
	return 0, false
}

// podSpec is the pod template spec of a workload, or nil.
func podSpec(o object) map[string]any {
	switch o.kind() {
	case "Deployment", "StatefulSet", "DaemonSet", "ReplicaSet", "Job":
		return dict(o.m, "spec", "template", "spec")
	case "CronJob":
		return dict(o.m, "spec", "jobTemplate", "spec", "template", "spec")
	case "Pod":
		return dict(o.m, "spec")
	}
	return nil
}

// podLabels are the labels of a workload's pods.
func podLabels(o object) map[string]any {
	if o.kind() == "Pod" {
		return dict(o.m, "metadata", "labels")
	}
	if o.kind() == "CronJob" {
		return dict(o.m, "spec", "jobTemplate", "spec", "template", "metadata", "labels")
	}
	return dict(o.m, "spec", "template", "metadata", "labels")
}

// container is one container of a workload.
type container struct {
	owner object
	m     map[string]any
}

func (c container) name() string { return str(c.m, "name") }

func (c container) String() string { return c.owner.String() + " container " + c.name() }

func containers(o object) []container {
	spec := podSpec(o)
	var out []container
	for _, key := range []string{"initContainers", "containers"} {
		for _, c := range list(spec, key) {
			if m, ok := c.(map[string]any); ok {
				out = append(out, container{owner: o, m: m})
			}
		}
	}
	return out
}

// isTrellis says the container runs the trellis image, under any registry
// and tag (an overlay may retag or rename it, e.g. trellis:dev).
func (c container) isTrellis() bool {
	repo, _ := imageRef(str(c.m, "image"))
	return path.Base(repo) == "trellis"
}

// argv is what the container's entrypoint receives: command (when it
// replaces the image's /trellis entrypoint, without it) and args.
func (c container) argv() []string {
	cmd := strs(c.m, "command")
	if len(cmd) > 0 && (cmd[0] == "/trellis" || cmd[0] == "trellis") {
		cmd = cmd[1:]
	}
	return append(cmd, strs(c.m, "args")...)
}

// env returns the container's env entries by name.
func (c container) env() map[string]map[string]any {
	out := make(map[string]map[string]any)
	for _, e := range list(c.m, "env") {
		if m, ok := e.(map[string]any); ok {
			out[str(m, "name")] = m
		}
	}
	return out
}

// envValue is the literal value of a variable, if it is set to one.
func (c container) envValue(name string) (string, bool) {
	e, ok := c.env()[name]
	if !ok || e["value"] == nil {
		return "", false
	}
	return str(e, "value"), true
}

// port resolves a probe or service port (a number or a port name) to a
// container port number.
func (c container) port(p any) (int, bool) {
	switch v := p.(type) {
	case int:
		return v, true
	case string:
		if n, err := strconv.Atoi(v); err == nil {
			return n, true
		}
		for _, cp := range list(c.m, "ports") {
			if str(cp, "name") == v {
				return intOf(cp, "containerPort")
			}
		}
	}
	return 0, false
}

func (c container) hasContainerPort(n int) bool {
	for _, cp := range list(c.m, "ports") {
		if p, ok := intOf(cp, "containerPort"); ok && p == n {
			return true
		}
	}
	return false
}

// selects reports whether a label selector's matchLabels (or a Service's
// plain selector) all hold in labels. An empty selector selects all.
func selects(selector map[string]any, labels map[string]any) bool {
	if ml, ok := selector["matchLabels"].(map[string]any); ok || selector["matchExpressions"] != nil {
		selector = ml
	}
	for k, v := range selector {
		if str(labels, k) != str(v) {
			return false
		}
	}
	return true
}

// composeService is one service of compose.yaml.
type composeService struct {
	name string
	m    map[string]any
}

func loadCompose(t *testing.T) map[string]composeService {
	t.Helper()
	docs := decodeAll(t, "compose.yaml")
	if len(docs) != 1 {
		t.Fatalf("compose.yaml: %d documents, want 1", len(docs))
	}
	services := dict(docs[0], "services")
	if len(services) == 0 {
		t.Fatal("compose.yaml: no services")
	}
	out := make(map[string]composeService)
	for name, s := range services {
		m, ok := s.(map[string]any)
		if !ok {
			t.Fatalf("compose.yaml: service %s is not a mapping", name)
		}
		out[name] = composeService{name: name, m: m}
	}
	return out
}

func (s composeService) isTrellis() bool {
	return strings.Contains(str(s.m, "image"), "trellis") || str(s.m, "build", "dockerfile") == "deploy/Dockerfile"
}

func (s composeService) command() []string {
	if cmd := str(s.m, "command"); cmd != "" {
		return strings.Fields(cmd)
	}
	return strs(s.m, "command")
}

func (s composeService) env() map[string]string {
	out := make(map[string]string)
	switch e := s.m["environment"].(type) {
	case map[string]any:
		for k, v := range e {
			out[k] = str(v)
		}
	case []any:
		for _, kv := range e {
			k, v, _ := strings.Cut(str(kv), "=")
			out[k] = v
		}
	}
	return out
}

// sortedKeys returns m's keys in order, for deterministic test output.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
