package redistest

import (
	"fmt"
	"net"
)

// FreePorts returns n distinct ports free on 127.0.0.1 right now: all n
// listeners are held open together before any is closed, so no two are
// the same. Another process may take one before the caller binds it, so a
// caller that starts a server on one should retry on fresh ports if the
// bind fails (as the cluster's startFresh does).
func FreePorts(n int) ([]int, error) {
	var lns []net.Listener
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	var ports []int
	for range n {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("find free port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}
