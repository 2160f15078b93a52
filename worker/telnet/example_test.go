package telnet_test

import (
	"fmt"

	"github.com/trellis-mud/trellis/worker/telnet"
)

func Example() {
	e, err := telnet.New(telnet.Options{ClientName: "Trellis", ClientVersion: "1.0"})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	// What a game might send on connect, in two TCP reads that split both
	// a negotiation and a UTF-8 character.
	reads := [][]byte{
		[]byte("Welcome to the Caf\xc3"),
		[]byte("\xa9!\r\n\xff\xfb\x01Password: \xff\xf9\xff\xfd"),
		[]byte("\x1f"), // IAC DO NAWS finished
	}
	var evs []telnet.Event
	var replies []byte
	for _, p := range reads {
		evs, err = e.Decode(p, evs)
		if err != nil {
			panic(err)
		}
		replies = e.Replies(replies)
	}
	for _, ev := range evs {
		switch ev.Kind {
		case telnet.EventText:
			fmt.Printf("text %q\n", ev.Text)
		case telnet.EventEcho:
			fmt.Printf("echo %v (mask input: %v)\n", ev.Echo, e.ServerEcho())
		default:
			fmt.Println(ev.Kind)
		}
	}
	fmt.Printf("replies % x\n", replies)
	fmt.Printf("input % x\n", e.Line(nil, "secret"))
	// Output:
	// text "Welcome to the Caf"
	// text "é!\n"
	// echo true (mask input: true)
	// text "Password: "
	// prompt
	// replies ff fd 01 ff fb 1f ff fa 1f 00 50 00 18 ff f0
	// input 73 65 63 72 65 74 0d 0a
}
