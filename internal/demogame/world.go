package demogame

import (
	"crypto/sha256"
	"crypto/subtle"
	"slices"
	"strings"
	"sync"
)

// player is one logged-in character. The session that owns it is the only
// writer of its fields except ip, which world.mu guards because `who` in
// another session reads it.
type player struct {
	name string
	out  *output
	kick func(reason string) // says why and hangs up; safe from any goroutine
	ip   string              // guarded by world.mu
}

// world is the state every connection shares: accounts made in this
// process and who is online. There is one room, so "in the room" and
// "online" are the same thing.
type world struct {
	mu       sync.Mutex
	accounts map[string][sha256.Size]byte // lower-case name -> password hash
	online   map[string]*player           // lower-case name -> player
}

func newWorld() *world {
	return &world{
		accounts: make(map[string][sha256.Size]byte),
		online:   make(map[string]*player),
	}
}

type loginResult int

const (
	loginNew loginResult = iota
	loginReturning
	loginWrongPassword
)

// login checks the password (any password creates a new name) and puts p
// online. If the name was already online, that older connection is
// returned so the caller can hang it up: the newer login takes over, as on
// most MUDs, which is also what a reconnecting gateway needs.
func (w *world) login(p *player, password string) (res loginResult, displaced *player) {
	key := strings.ToLower(p.name)
	sum := sha256.Sum256([]byte(password))
	w.mu.Lock()
	defer w.mu.Unlock()
	if known, ok := w.accounts[key]; ok {
		if subtle.ConstantTimeCompare(known[:], sum[:]) != 1 {
			return loginWrongPassword, nil
		}
		res = loginReturning
	} else {
		w.accounts[key] = sum
		res = loginNew
	}
	displaced = w.online[key]
	w.online[key] = p
	return res, displaced
}

// leave takes p offline unless a newer login for the same name replaced
// it, and reports whether p was the one online.
func (w *world) leave(p *player) bool {
	key := strings.ToLower(p.name)
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.online[key] != p {
		return false
	}
	delete(w.online, key)
	return true
}

func (w *world) setIP(p *player, ip string) {
	w.mu.Lock()
	p.ip = ip
	w.mu.Unlock()
}

// others returns everyone online but p, for broadcasting outside the lock.
func (w *world) others(p *player) []*player {
	w.mu.Lock()
	defer w.mu.Unlock()
	out := make([]*player, 0, len(w.online))
	for _, o := range w.online {
		if o != p {
			out = append(out, o)
		}
	}
	return out
}

type whoEntry struct{ name, ip string }

// who lists the online players sorted by name.
func (w *world) who() []whoEntry {
	w.mu.Lock()
	out := make([]whoEntry, 0, len(w.online))
	for _, p := range w.online {
		out = append(out, whoEntry{p.name, p.ip})
	}
	w.mu.Unlock()
	slices.SortFunc(out, func(a, b whoEntry) int { return strings.Compare(a.name, b.name) })
	return out
}

func (w *world) count() int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return len(w.online)
}
