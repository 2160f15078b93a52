package telnet_test

import (
	"encoding/json"
	"errors"
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

func ExampleEngine_MSDP() {
	e, err := telnet.New(telnet.Options{})
	if err != nil {
		panic(err)
	}
	defer e.Close()

	// The game offers MSDP; the engine agrees.
	evs, _ := e.Decode([]byte{telnet.IAC, telnet.WILL, telnet.OptMSDP}, nil)
	fmt.Printf("replies % x\n", e.Replies(nil))

	// Ask for two variables whenever they change.
	report, err := e.MSDP(nil, "REPORT", json.RawMessage(`["HEALTH","ROOM"]`))
	if err != nil {
		panic(err)
	}
	fmt.Printf("report %q\n", report)

	// The game answers: HEALTH "95", ROOM {"NAME":"Temple","EXITS":["n","s"]}.
	block, _ := telnet.AppendMSDP(nil, "HEALTH", json.RawMessage(`"95"`))
	room, _ := telnet.AppendMSDP(nil, "ROOM", json.RawMessage(`{"NAME":"Temple","EXITS":["n","s"]}`))
	evs, _ = e.Decode(append(block, room...), evs[:0])
	for _, ev := range evs {
		fmt.Println(ev.Kind, ev.Var, string(ev.Data))
	}

	// What MSDP cannot carry is refused before it reaches the game.
	_, err = e.MSDP(nil, "FLAG", json.RawMessage(`true`))
	fmt.Println(errors.Is(err, telnet.ErrMSDPValue))
	// Output:
	// replies ff fd 45
	// report "\xff\xfaE\x01REPORT\x02HEALTH\x02ROOM\xff\xf0"
	// msdp HEALTH "95"
	// msdp ROOM {"NAME":"Temple","EXITS":["n","s"]}
	// true
}
