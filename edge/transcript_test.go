package edge

import (
	"net/http"
	"strings"
	"testing"

	"github.com/trellis-mud/trellis/store"
)

func TestTranscriptDownload(t *testing.T) {
	e := newEnv(t, nil)
	alice, bob := newUser(), newUser()
	key := store.SessionKey{User: alice, Game: "demo"}
	for _, o := range []store.Output{
		{Kind: store.OutStatus, State: store.StateConnected, Text: "connected to Trellis Demo"},
		{Kind: store.OutText, Text: "\x1b[31mred\x1b[0m <b>not bold</b>\nName: "},
		{Kind: store.OutInput, Text: "alice"},
		{Kind: store.OutText, Text: "Password: "},
		{Kind: store.OutInput, Redacted: true},
		{Kind: store.OutText, Text: "\nWelcome!\n> "},
		{Kind: store.OutGMCP, Package: "Char.Vitals", Data: []byte(`{"hp":1}`)},
		{Kind: store.OutInput, Text: "look"},
	} {
		if _, err := e.st.AppendOutput(t.Context(), key, o); err != nil {
			t.Fatal(err)
		}
	}
	get := func(query, token string) (*http.Response, string) {
		h := http.Header{}
		if token != "" {
			h.Set("Authorization", "Bearer "+token)
		}
		return httpGet(t, "http://"+e.addr+"/api/transcript?"+query, h)
	}

	resp, body := get("game=demo", e.token(alice))
	want := "— connected: connected to Trellis Demo —\nred <b>not bold</b>\nName: alice\nPassword: \nWelcome!\n> look\n"
	if resp.StatusCode != 200 || body != want {
		t.Fatalf("text transcript: %d\n%q\nwant\n%q", resp.StatusCode, body, want)
	}
	if cd := resp.Header.Get("Content-Disposition"); !strings.HasPrefix(cd, `attachment; filename="demo-`) || !strings.HasSuffix(cd, `.txt"`) {
		t.Errorf("Content-Disposition = %q", cd)
	}

	resp, body = get("game=demo&format=html", e.token(alice))
	if resp.StatusCode != 200 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/html") {
		t.Fatalf("html transcript: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	for _, wantIn := range []string{"&lt;b&gt;not bold&lt;/b&gt;", `<span style="color:`, "Name: alice", "&gt; look"} {
		if !strings.Contains(body, wantIn) {
			t.Errorf("html transcript lacks %q:\n%s", wantIn, body)
		}
	}
	if strings.Contains(body, "<b>") {
		t.Error("game text became markup in the HTML transcript")
	}

	// Another player's download holds nothing of alice's session.
	if _, body := get("game=demo", e.token(bob)); strings.Contains(body, "alice") {
		t.Errorf("bob's transcript shows alice's session: %q", body)
	}
	for name, tc := range map[string]struct {
		query, token string
		code         int
	}{
		"no token":     {"game=demo", "", 401},
		"unknown game": {"game=nope", e.token(alice), 404},
		"bad format":   {"game=demo&format=pdf", e.token(alice), 400},
	} {
		if resp, body := get(tc.query, tc.token); resp.StatusCode != tc.code || !strings.Contains(body, `"error"`) {
			t.Errorf("%s: %d %q, want %d with an error", name, resp.StatusCode, body, tc.code)
		}
	}
}
