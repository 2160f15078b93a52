package main

import (
	"slices"
	"strings"

	"github.com/trellis-mud/trellis/store"
)

// eventTypes are the lifecycle event types store defines (a test checks
// this list against store/events.go).
var eventTypes = []string{
	store.EvSessionStarting, store.EvSessionStarted, store.EvSessionReattached, store.EvSessionDetached,
	store.EvSessionIdle, store.EvSessionRestarting, store.EvSessionEnded, store.EvSessionFailed,
	store.EvSessionFailover, store.EvSessionGMCPTrimmed, store.EvSessionMSDPTrimmed,
	store.EvLeaseLost, store.EvLeaseRestored,
	store.EvWorkerStarted, store.EvWorkerDraining, store.EvWorkerStopped, store.EvWorkerSelfFenced,
	store.EvControlDeadLetter,
	store.EvEdgeStarted, store.EvEdgeStopped,
	store.EvOperatorSignedIn, store.EvOperatorSessionKilled, store.EvOperatorGamesChanged,
}

const eventTypePrefix = "trellis."

// typeFilter matches event types against what -type named: whole types
// and families (trellis.session matches trellis.session.*). Empty matches
// everything.
type typeFilter []string

func (f typeFilter) match(typ string) bool {
	if len(f) == 0 {
		return true
	}
	for _, p := range f {
		if typ == p || strings.HasPrefix(typ, p+".") {
			return true
		}
	}
	return false
}

// parseEventTypes reads -type: comma-separated types or families, each
// with or without the "trellis." every type starts with. Anything that
// names no known type is a usage error listing the known ones.
func parseEventTypes(s string) (typeFilter, error) {
	if strings.TrimSpace(s) == "" {
		return nil, nil
	}
	var f typeFilter
	for _, name := range strings.Split(s, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		full := name
		if !strings.HasPrefix(full, eventTypePrefix) {
			full = eventTypePrefix + full
		}
		if name == "" || !slices.ContainsFunc(eventTypes, typeFilter{full}.match) || full+"." == eventTypePrefix {
			return nil, usageErrorf("-type %q: not an event type or family; the types are:\n  %s\n(the %q prefix may be left out; a family such as session or lease names all of its types)",
				name, strings.Join(shortTypes(), "\n  "), eventTypePrefix)
		}
		f = append(f, full)
	}
	return f, nil
}

// shortTypes are the event types without their common prefix.
func shortTypes() []string {
	out := make([]string, len(eventTypes))
	for i, t := range eventTypes {
		out[i] = strings.TrimPrefix(t, eventTypePrefix)
	}
	return out
}
