package edge

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/trellis-mud/trellis/store"
)

// settingsDo sends one request to the settings endpoint.
func settingsDo(t *testing.T, e *env, method, token, body string, h http.Header) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, "http://"+e.addr+"/api/settings", strings.NewReader(body))
	for k, v := range h {
		req.Header[k] = v
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if method == http.MethodPut && req.Header.Get("Content-Type") == "" {
		req.Header.Set("Content-Type", "application/json")
	}
	cl := &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 10 * time.Second}
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSettingsEndpoint(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := newUser(), newUser()
	ta, tb := e.token(alice), e.token(bob)

	if code, body := settingsDo(t, e, "GET", ta, "", nil); code != 200 || body != "{}" {
		t.Fatalf("GET before any PUT: %d %q, want 200 {}", code, body)
	}
	doc := `{"fontSize":18,"aliases":[{"name":"k","body":"kill $1"}]}`
	if code, body := settingsDo(t, e, "PUT", ta, doc, nil); code != 204 {
		t.Fatalf("PUT: %d %q", code, body)
	}
	if code, body := settingsDo(t, e, "GET", ta, "", nil); code != 200 || body != doc {
		t.Fatalf("GET: %d %q, want %q", code, body, doc)
	}
	if _, body := settingsDo(t, e, "GET", tb, "", nil); body != "{}" {
		t.Fatalf("another user reads %q", body)
	}
	// What the store holds is what the endpoint wrote.
	if got, _ := e.st.UserSettings(t.Context(), alice); string(got) != doc {
		t.Fatalf("store holds %q", got)
	}

	errorOf := func(body string) string {
		var v struct{ Error string }
		_ = json.Unmarshal([]byte(body), &v)
		return v.Error
	}
	for name, tc := range map[string]struct {
		method, token, body string
		h                   http.Header
		code                int
		says                string
	}{
		"no token":      {"GET", "", "", nil, 401, "sign in"},
		"bad token":     {"GET", "not-a-token", "", nil, 401, "sign in"},
		"foreign page":  {"PUT", ta, `{}`, http.Header{"Origin": {"http://evil.example"}}, 403, "this site"},
		"not json":      {"PUT", ta, `[1,2]`, nil, 400, "JSON object"},
		"not json type": {"PUT", ta, `{}`, http.Header{"Content-Type": {"text/plain"}}, 415, "application/json"},
		"too large":     {"PUT", ta, `{"x":"` + strings.Repeat("a", store.MaxUserSettings) + `"}`, nil, 413, "larger than 64 KiB"},
	} {
		code, body := settingsDo(t, e, tc.method, tc.token, tc.body, tc.h)
		if code != tc.code || !strings.Contains(errorOf(body), tc.says) {
			t.Errorf("%s: %d %.100q, want %d with an error saying %q", name, code, body, tc.code, tc.says)
		}
	}
	// The refused writes changed nothing.
	if _, body := settingsDo(t, e, "GET", ta, "", nil); body != doc {
		t.Fatalf("after refused writes: %q", body)
	}
	// The page's own origin is fine.
	if code, _ := settingsDo(t, e, "PUT", ta, `{"a":1}`, http.Header{"Origin": {"http://" + e.addr}}); code != 204 {
		t.Fatalf("same-origin PUT: %d", code)
	}
}

func TestGamesListCarriesClientFields(t *testing.T) {
	e := newEnv(t, nil)
	g := store.Game{ID: "char", Name: "Char", Host: "127.0.0.1", Port: 4002, Echo: store.EchoCharacter,
		Vitals: []store.VitalSpec{{Label: "HP", Package: "Char.Status", Value: "health", Max: "maxHealth"}}}
	if err := e.st.PutGame(t.Context(), g); err != nil {
		t.Fatal(err)
	}
	_, body := httpGet(t, "http://"+e.addr+"/api/games", nil)
	var games []map[string]any
	if err := json.Unmarshal([]byte(body), &games); err != nil {
		t.Fatal(err)
	}
	var found map[string]any
	for _, x := range games {
		if x["id"] == "char" {
			found = x
		}
	}
	got, _ := json.Marshal(found)
	want := `{"description":"","echo":"character","id":"char","name":"Char","players":null,"vitals":[{"label":"HP","max":"maxHealth","package":"Char.Status","value":"health"}]}`
	if !bytes.Equal(got, []byte(want)) {
		t.Fatalf("/api/games entry = %s\nwant %s", got, want)
	}
}
