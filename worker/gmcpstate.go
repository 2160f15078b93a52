package worker

import "container/list"

// gmcpState tracks which GMCP packages the session's state hash in Redis
// holds (the last message of each, replayed to every viewer that attaches)
// so that it stays within a count and a byte bound: a game that sends
// thousands of distinct packages would otherwise grow the hash, and every
// attach's replay, without limit. Past a bound the package updated least
// recently is forgotten (a Char.Vitals the game keeps sending stays; a
// one-off package goes first). It does no I/O: the entry that would cross
// the bound carries the names to forget (store.Output.DropGMCP), so the
// store removes them in the same script that adds the new message.
//
// A session keeps its gmcpState across its game connections. After a
// failover the new owner starts empty while the hash may still hold the
// previous owner's packages, so the hash holds at most twice the bound
// until the session ends (when it is deleted).
type gmcpState struct {
	maxPackages, maxBytes int
	bytes                 int
	order                 *list.List // of *gmcpPackage, least recently updated first
	byName                map[string]*list.Element
	trimmed               bool // a package was forgotten once (the event is sent once)
}

type gmcpPackage struct {
	name string
	size int
}

func newGMCPState(maxPackages, maxBytes int) *gmcpState {
	return &gmcpState{maxPackages: maxPackages, maxBytes: maxBytes, order: list.New(), byName: make(map[string]*list.Element)}
}

// put records a message of size bytes for pkg and returns the packages to
// forget to stay within bounds, and whether this is the first time any was.
func (g *gmcpState) put(pkg string, size int) (drop []string, first bool) {
	size += len(pkg)
	if e, ok := g.byName[pkg]; ok {
		p := e.Value.(*gmcpPackage)
		g.bytes += size - p.size
		p.size = size
		g.order.MoveToBack(e)
	} else {
		g.byName[pkg] = g.order.PushBack(&gmcpPackage{name: pkg, size: size})
		g.bytes += size
	}
	for g.order.Len() > 1 && (g.order.Len() > g.maxPackages || g.bytes > g.maxBytes) {
		p := g.order.Remove(g.order.Front()).(*gmcpPackage)
		delete(g.byName, p.name)
		g.bytes -= p.size
		drop = append(drop, p.name)
	}
	if len(drop) > 0 && !g.trimmed {
		g.trimmed = true
		first = true
	}
	return drop, first
}
