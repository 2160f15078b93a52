package deploy

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Some mistakes only show in what kustomize makes of the files: an images
// entry that a lower layer's rename has made dead, a namespace written into
// a string that the namespace transformer cannot see, a component adding a
// second way of scraping. The tests below render every overlay with
// check.sh, the same path (and pinned kustomize) `make manifests` uses.

// probeSuffix marks the copies of overlays rendered with another namespace.
const probeSuffix = "-nsprobe"

// rendered is one overlay as kustomize built it.
type rendered struct {
	name      string // overlay directory name
	namespace string // the namespace it was rendered into
	original  string // for a probe copy: the namespace the overlay sets
	probe     bool
	objs      []object
}

var renderOnce struct {
	sync.Once
	overlays []rendered
	skip     string
	err      error
}

// renderOverlays renders every overlay, and a copy of each one that sets a
// namespace with that namespace changed (the probes), in one check.sh run.
// Without kustomize (not cached and no network) the tests skip, except in
// CI, as the browser tests do.
func renderOverlays(t *testing.T) []rendered {
	t.Helper()
	if testing.Short() {
		t.Skip("renders the overlays with kustomize: skipped with -short")
	}
	renderOnce.Do(func() {
		renderOnce.overlays, renderOnce.skip, renderOnce.err = render()
	})
	if renderOnce.skip != "" {
		if os.Getenv("CI") == "" {
			t.Skipf("kustomize cannot run here, skipping outside CI: %s", renderOnce.skip)
		}
		t.Fatalf("kustomize cannot run and CI is set: %s", renderOnce.skip)
	}
	if renderOnce.err != nil {
		t.Fatal(renderOnce.err)
	}
	return renderOnce.overlays
}

var namespaceLine = regexp.MustCompile(`(?m)^namespace:[ \t]*(\S+)[ \t]*$`)

func render() (out []rendered, skip string, err error) {
	tmp, err := os.MkdirTemp("", "trellis-render-")
	if err != nil {
		return nil, "", err
	}
	defer os.RemoveAll(tmp)
	tree := filepath.Join(tmp, "kubernetes")
	// A developer's real secrets.env never leaves the work tree: check.sh
	// puts the committed example in its place.
	if err := copyTree("kubernetes", tree, func(rel string) bool { return filepath.Base(rel) == "secrets.env" }); err != nil {
		return nil, "", err
	}
	dirs, err := os.ReadDir(filepath.Join(tree, "overlays"))
	if err != nil {
		return nil, "", err
	}
	namespaces := map[string]string{}
	for _, d := range dirs {
		if !d.IsDir() {
			continue
		}
		name := d.Name()
		k, err := os.ReadFile(filepath.Join(tree, "overlays", name, "kustomization.yaml"))
		if err != nil {
			return nil, "", err
		}
		m := namespaceLine.FindSubmatch(k)
		if m == nil {
			namespaces[name] = ""
			continue
		}
		namespaces[name] = string(m[1])
		probe := name + probeSuffix
		namespaces[probe] = "nsprobe-" + name
		if err := copyTree(filepath.Join(tree, "overlays", name), filepath.Join(tree, "overlays", probe), nil); err != nil {
			return nil, "", err
		}
		k = namespaceLine.ReplaceAll(k, []byte("namespace: "+namespaces[probe]))
		if err := os.WriteFile(filepath.Join(tree, "overlays", probe, "kustomization.yaml"), k, 0o644); err != nil {
			return nil, "", err
		}
	}

	outDir := filepath.Join(tmp, "out")
	cmd := exec.Command("bash", "check.sh")
	cmd.Env = append(os.Environ(), "TREE="+tree, "OUT="+outDir)
	var buf bytes.Buffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) && exit.ExitCode() == 2 {
			return nil, strings.TrimSpace(buf.String()), nil
		}
		return nil, "", fmt.Errorf("check.sh: %v\n%s", err, buf.String())
	}

	for _, name := range sortedKeys(namespaces) {
		path := filepath.Join(outDir, name+".yaml")
		docs, err := decodeFile(path)
		if err != nil {
			return nil, "", err
		}
		r := rendered{name: name, namespace: namespaces[name]}
		if base, ok := strings.CutSuffix(name, probeSuffix); ok {
			r.probe, r.original = true, namespaces[base]
		}
		for i, d := range docs {
			r.objs = append(r.objs, object{file: "rendered " + name, index: i, m: d})
		}
		out = append(out, r)
	}
	return out, "", nil
}

func decodeFile(path string) ([]map[string]any, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var out []map[string]any
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			if errors.Is(err, io.EOF) {
				return out, nil
			}
			return nil, fmt.Errorf("%s: document %d: %v", path, len(out), err)
		}
		if m != nil {
			out = append(out, m)
		}
	}
}

// copyTree copies the files under src to dst, leaving out those skip names
// (by path relative to src).
func copyTree(src, dst string, skip func(rel string) bool) error {
	return filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if skip != nil && skip(rel) {
			return nil
		}
		target := filepath.Join(dst, rel)
		if d.IsDir() {
			return os.MkdirAll(target, 0o755)
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(target, data, 0o644)
	})
}

// overlays are the real overlays (no probes).
func realOverlays(rs []rendered) []rendered {
	var out []rendered
	for _, r := range rs {
		if !r.probe {
			out = append(out, r)
		}
	}
	return out
}

// imageRef splits an image reference into repository and tag ("" when it
// has none; a digest counts as a tag).
func imageRef(img string) (repo, tag string) {
	if r, d, ok := strings.Cut(img, "@"); ok {
		return r, "@" + d
	}
	// A colon after the last slash is a tag; one before it is a registry
	// port.
	if i := strings.LastIndex(img, ":"); i > strings.LastIndex(img, "/") {
		return img[:i], img[i+1:]
	}
	return img, ""
}

// The tag (and name) an overlay sets for the Trellis image reaches every
// Trellis container it renders, and they all run one image: an images entry
// that matches nothing is silently ignored by kustomize, and a stack mixing
// two builds of trellis (an edge from one, a worker from another) speaks two
// versions of the Redis protocol between its parts.
func TestRenderedImagesFollowTheOverlay(t *testing.T) {
	for _, r := range realOverlays(renderOverlays(t)) {
		k := decodeAll(t, filepath.Join("kubernetes", "overlays", r.name, "kustomization.yaml"))[0]
		want := ""
		for _, e := range list(k, "images") {
			name := str(e, "name")
			if filepath.Base(name) != "trellis" {
				continue
			}
			repo := name
			if n := str(e, "newName"); n != "" {
				repo = n
			}
			want = repo
			if tag := str(e, "newTag"); tag != "" {
				want += ":" + tag
			}
			if d := str(e, "digest"); d != "" {
				want = repo + "@" + d
			}
		}
		images := map[string][]string{}
		for _, o := range r.objs {
			for _, c := range containers(o) {
				if c.isTrellis() {
					img := str(c.m, "image")
					images[img] = append(images[img], c.String())
				}
			}
		}
		if len(images) == 0 {
			t.Errorf("overlay %s: renders no Trellis container", r.name)
			continue
		}
		if len(images) > 1 {
			t.Errorf("overlay %s: Trellis containers run %d different images: %v", r.name, len(images), images)
		}
		for img, where := range images {
			if want != "" && img != want {
				t.Errorf("overlay %s: its images entry says %s, but %d containers run %s: %v", r.name, want, len(where), img, where)
			}
			if _, tag := imageRef(img); tag == "" || tag == "latest" {
				t.Errorf("overlay %s: %s is not pinned (tag %q): a rollout would not know what it runs", r.name, img, tag)
			}
		}
	}
}

// The image name is written once, in the manifests; only overlays (the
// top of the stack) rename or tag it. An images entry in the base renames
// the image before an overlay's entry is tried, so the overlay's entry,
// still matching the old name, is dead.
func TestImagesOwnedByOverlays(t *testing.T) {
	written := map[string]bool{}
	for _, o := range loadKubernetes(t) {
		for _, c := range containers(o) {
			repo, _ := imageRef(str(c.m, "image"))
			written[repo] = true
		}
	}
	for _, o := range loadKubernetes(t) {
		if filepath.Base(o.file) != "kustomization.yaml" {
			continue
		}
		overlay := strings.HasPrefix(o.file, filepath.Join("kubernetes", "overlays")+string(filepath.Separator))
		for _, e := range list(o.m, "images") {
			if !overlay {
				t.Errorf("%s: images entry %q: only overlays may set images (an entry here makes the overlays' entries for the same image dead)", o.file, str(e, "name"))
			}
			if !written[str(e, "name")] {
				t.Errorf("%s: images entry %q matches no container image written in deploy/kubernetes (%v)", o.file, str(e, "name"), sortedKeys(written))
			}
		}
	}
}

// Every Trellis service of the compose file runs one image: the edges,
// workers, demo game and the one-shot are one build, retagged together by
// IMAGE.
func TestComposeOneTrellisImage(t *testing.T) {
	images := map[string][]string{}
	services := loadCompose(t)
	for _, name := range sortedKeys(services) {
		if s := services[name]; s.isTrellis() {
			img := str(s.m, "image")
			images[img] = append(images[img], name)
		}
	}
	if len(images) != 1 {
		t.Errorf("compose: Trellis services run %d images: %v", len(images), images)
	}
	for img, names := range images {
		if img == "" {
			t.Errorf("compose %v: no image: compose would name each build after its service", names)
		}
	}
}

// namespaceRefs returns every namespace an object names: metadata and
// other namespace fields, namespaceSelector names, and the namespace label
// of a <service>.<namespace>.svc name inside any string.
func namespaceRefs(v any, path string, out map[string][]string) {
	switch n := v.(type) {
	case map[string]any:
		for _, k := range sortedKeys(n) {
			p := path + "." + k
			if s, ok := n[k].(string); ok && (k == "namespace" || k == "kubernetes.io/metadata.name") {
				out[s] = append(out[s], p)
				continue
			}
			if k == "matchNames" {
				for _, s := range strs(n[k]) {
					out[s] = append(out[s], p)
				}
				continue
			}
			namespaceRefs(n[k], p, out)
		}
	case []any:
		for i, e := range n {
			namespaceRefs(e, fmt.Sprintf("%s[%d]", path, i), out)
		}
	case string:
		for _, m := range svcName.FindAllStringSubmatch(n, -1) {
			out[m[1]] = append(out[m[1]], path)
		}
	}
}

var svcName = regexp.MustCompile(`[a-z0-9-]+\.([a-z0-9-]+)\.svc\b`)

// No rendered object names a namespace of its own but the one kustomize
// sets: an overlay rendered into another namespace must come out with no
// trace of the old one. The KEDA address is the case in point: KEDA dials
// Redis from its own namespace, so the address is fully qualified, and a
// namespace written into that string by hand is invisible to the namespace
// transformer.
func TestRenderedNamespacesFollowTheOverlay(t *testing.T) {
	rs := renderOverlays(t)
	// The namespaces Trellis is ever rendered into; KEDA's own ("keda", in
	// the Redis NetworkPolicy) is foreign and allowed.
	ours := map[string]bool{"trellis": true}
	for _, r := range rs {
		if r.original != "" {
			ours[r.original] = true
		}
	}
	var probes int
	for _, r := range rs {
		for _, o := range r.objs {
			refs := map[string][]string{}
			namespaceRefs(o.m, "", refs)
			for _, ns := range sortedKeys(refs) {
				if ns != r.namespace && ours[ns] {
					t.Errorf("overlay %s (namespace %s): %s/%s names namespace %q at %v", r.name, r.namespace, o.kind(), o.name(), ns, refs[ns])
				}
			}
			if o.kind() != "ScaledObject" {
				continue
			}
			for _, tr := range list(o.m, "spec", "triggers") {
				if str(tr, "type") != "redis-streams" {
					continue
				}
				addr := str(tr, "metadata", "address")
				if m := svcName.FindStringSubmatch(addr); m == nil || m[1] != r.namespace {
					t.Errorf("overlay %s (namespace %s): KEDA dials Redis at %q, not in the overlay's namespace", r.name, r.namespace, addr)
				}
			}
		}
		if r.probe {
			probes++
		}
	}
	if probes == 0 {
		t.Error("no overlay sets a namespace: nothing was rendered into another one")
	}
}

// scrapedBy says how Prometheus finds a workload's pods in a rendered
// overlay: by the prometheus.io/scrape annotation, by a ServiceMonitor that
// selects a Service that selects them, or both.
func scrapedBy(objs []object, w object) (annotated bool, monitors []string) {
	annotated = str(w.m, "spec", "template", "metadata", "annotations", "prometheus.io/scrape") == "true"
	for _, sm := range objs {
		if sm.kind() != "ServiceMonitor" {
			continue
		}
		for _, svc := range objs {
			if svc.kind() != "Service" || str(svc.m, "metadata", "namespace") != str(w.m, "metadata", "namespace") {
				continue
			}
			if !selects(dict(sm.m, "spec", "selector"), dict(svc.m, "metadata", "labels")) ||
				!selects(dict(svc.m, "spec", "selector"), podLabels(w)) || len(dict(svc.m, "spec", "selector")) == 0 {
				continue
			}
			ports := map[string]bool{}
			for _, p := range list(svc.m, "spec", "ports") {
				ports[str(p, "name")] = true
			}
			for _, ep := range list(sm.m, "spec", "endpoints") {
				if ports[str(ep, "port")] {
					monitors = append(monitors, sm.name()+" via Service "+svc.name())
				}
			}
		}
	}
	return annotated, monitors
}

// Edges and workers are scraped exactly once in every overlay. A
// Prometheus that honours both the prometheus.io annotations and
// ServiceMonitors would otherwise scrape each pod twice, and every sum on
// the dashboard and in the alerts would count it twice. The base carries
// the annotations (the common Prometheus configuration scrapes by them);
// the monitoring component swaps them for ServiceMonitors.
func TestRenderedScrapedOnce(t *testing.T) {
	for _, r := range realOverlays(renderOverlays(t)) {
		for _, role := range []string{"edge", "worker"} {
			var found bool
			for _, o := range r.objs {
				for _, c := range containers(o) {
					if argv := c.argv(); !c.isTrellis() || len(argv) == 0 || argv[0] != role {
						continue
					}
					found = true
					annotated, monitors := scrapedBy(r.objs, o)
					switch {
					case annotated && len(monitors) > 0:
						t.Errorf("overlay %s: %s is scraped twice: by its prometheus.io/scrape annotation and by %v", r.name, o, monitors)
					case len(monitors) > 1:
						t.Errorf("overlay %s: %s is scraped by %d ServiceMonitors: %v", r.name, o, len(monitors), monitors)
					case !annotated && len(monitors) == 0:
						t.Errorf("overlay %s: nothing scrapes %s", r.name, o)
					}
				}
			}
			if !found {
				t.Errorf("overlay %s: no workload runs `trellis %s`", r.name, role)
			}
		}
	}
}

// The rendered overlays pass the same command-line check as the sources
// (patches included).
func TestRenderedNoSecretsOnCommandLines(t *testing.T) {
	for _, r := range realOverlays(renderOverlays(t)) {
		for _, o := range r.objs {
			for _, c := range containers(o) {
				for _, p := range secretArgvProblems(c.argv0(), secretEnvNames(c)) {
					t.Errorf("overlay %s: %s: %s", r.name, c, p)
				}
			}
		}
	}
}

// An overlay that includes the monitoring component gets the dashboard as
// a ConfigMap Grafana's sidecar picks up, and the alert rules as a
// PrometheusRule, both identical to the files in the component.
func TestRenderedMonitoringWired(t *testing.T) {
	var wired int
	for _, r := range realOverlays(renderOverlays(t)) {
		k := decodeAll(t, filepath.Join("kubernetes", "overlays", r.name, "kustomization.yaml"))[0]
		if !slices.ContainsFunc(strs(k, "components"), func(c string) bool { return filepath.Base(c) == "monitoring" }) {
			continue
		}
		wired++
		var dashboards, rules int
		for _, o := range r.objs {
			switch {
			case o.kind() == "ConfigMap" && str(o.m, "metadata", "labels", "grafana_dashboard") != "":
				want, err := os.ReadFile(dashboardFile)
				if err != nil {
					t.Fatal(err)
				}
				for _, key := range sortedKeys(dict(o.m, "data")) {
					dashboards++
					got := str(o.m, "data", key)
					if got != string(want) {
						t.Errorf("overlay %s: ConfigMap %s %s is not %s", r.name, o.name(), key, dashboardFile)
					}
					checkDashboardJSON(t, "overlay "+r.name+" ConfigMap "+o.name()+" "+key, []byte(got))
				}
			case o.kind() == "PrometheusRule":
				rules++
				checkRuleGroups(t, "overlay "+r.name+" "+o.String(), list(o.m, "spec", "groups"))
			}
		}
		if dashboards == 0 {
			t.Errorf("overlay %s includes the monitoring component but renders no dashboard ConfigMap", r.name)
		}
		if rules == 0 {
			t.Errorf("overlay %s includes the monitoring component but renders no PrometheusRule", r.name)
		}
	}
	if wired == 0 {
		t.Error("no overlay includes components/monitoring")
	}
}
