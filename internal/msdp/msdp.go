package msdp

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// The MSDP bytes (option 69's subnegotiation).
const (
	Var        = 1
	Val        = 2
	TableOpen  = 3
	TableClose = 4
	ArrayOpen  = 5
	ArrayClose = 6
)

// Bounds of one MSDP block, decoded or encoded. A block is already at most
// a subnegotiation's size; these bound what it may ask of a decoder and of
// the browser that renders it.
const (
	// MaxDepth is how deeply tables and arrays may nest inside a value.
	// Real games nest two or three deep (ROOM > EXITS); the bound keeps a
	// parser's stack a fixed array and a browser's renderer shallow.
	MaxDepth = 32
	// MaxElements is how many names and values (VAR and VAL bytes, or
	// their JSON counterparts) one block may carry. The largest real
	// answers (REPORTABLE_VARIABLES) hold about a hundred.
	MaxElements = 4096
)

// Commands are the client commands whose list of names travels as one
// VAL per name (VAR "REPORT" VAL "HEALTH" VAL "MANA"), the form the MSDP
// specification's examples and the common server snippets read.
var Commands = map[string]bool{"LIST": true, "REPORT": true, "UNREPORT": true, "RESET": true, "SEND": true}

// ErrValue is wrapped by the error Body returns when a name or value
// cannot be sent as MSDP.
var ErrValue = errors.New("value cannot be sent as MSDP")

// Body encodes VAR name VAL value without the telnet framing.
func Body(name string, value json.RawMessage) ([]byte, error) {
	fail := func(format string, args ...any) ([]byte, error) {
		return nil, fmt.Errorf("%w: %s: %s", ErrValue, name, fmt.Sprintf(format, args...))
	}
	if name == "" {
		return nil, fmt.Errorf("%w: empty variable name", ErrValue)
	}
	if err := checkString(name); err != nil {
		return fail("name %v", err)
	}
	if len(bytes.TrimSpace(value)) == 0 {
		return fail("no value")
	}
	dec := json.NewDecoder(bytes.NewReader(value))
	dec.UseNumber()
	enc := encoder{dec: dec, out: append(make([]byte, 0, len(name)+len(value)+8), Var), elems: 1}
	enc.out = append(enc.out, name...)
	tok, err := dec.Token()
	if err != nil {
		return fail("invalid JSON: %v", err)
	}
	if tok == json.Delim('[') && Commands[name] {
		for dec.More() {
			if err := enc.val(0); err != nil {
				return fail("%v", err)
			}
		}
		if _, err = dec.Token(); err != nil { // the ']'
			err = fmt.Errorf("invalid JSON: %w", err)
		}
	} else {
		enc.elems++
		enc.out = append(enc.out, Val)
		err = enc.value(tok, 0)
	}
	if err != nil {
		return fail("%v", err)
	}
	if _, err := dec.Token(); err != io.EOF {
		return fail("more than one JSON value")
	}
	return enc.out, nil
}

type encoder struct {
	dec   *json.Decoder
	out   []byte
	elems int
}

// val reads the next value and appends VAL value.
func (m *encoder) val(depth int) error {
	tok, err := m.dec.Token()
	if err != nil {
		return fmt.Errorf("invalid JSON: %w", err)
	}
	if m.elems++; m.elems > MaxElements {
		return fmt.Errorf("more than %d names and values", MaxElements)
	}
	m.out = append(m.out, Val)
	return m.value(tok, depth)
}

// value appends the value that starts with tok; depth is how many tables
// and arrays enclose it.
func (m *encoder) value(tok json.Token, depth int) error {
	switch t := tok.(type) {
	case string:
		if err := checkString(t); err != nil {
			return fmt.Errorf("string %v", err)
		}
		m.out = append(m.out, t...)
		return nil
	case json.Number:
		m.out = append(m.out, t...)
		return nil
	case json.Delim:
		if depth == MaxDepth {
			return fmt.Errorf("nested deeper than %d", MaxDepth)
		}
		open, closer := byte(ArrayOpen), byte(ArrayClose)
		if t == '{' {
			open, closer = TableOpen, TableClose
		}
		m.out = append(m.out, open)
		for m.dec.More() {
			if t == '{' {
				key, err := m.dec.Token()
				if err != nil {
					return fmt.Errorf("invalid JSON: %w", err)
				}
				k := key.(string) // json.Decoder only returns string keys
				if err := checkString(k); err != nil {
					return fmt.Errorf("name %v", err)
				}
				if m.elems++; m.elems > MaxElements {
					return fmt.Errorf("more than %d names and values", MaxElements)
				}
				m.out = append(m.out, Var)
				m.out = append(m.out, k...)
			}
			if err := m.val(depth + 1); err != nil {
				return err
			}
		}
		if _, err := m.dec.Token(); err != nil {
			return fmt.Errorf("invalid JSON: %w", err)
		}
		m.out = append(m.out, closer)
		return nil
	}
	if tok == nil {
		tok = "null"
	}
	return fmt.Errorf("%v has no MSDP form; send a string", tok)
}

// checkString refuses the bytes that cannot travel inside an MSDP
// string. The error does not quote the string: the worker logs these, and
// a value is the player's to keep out of logs.
func checkString(s string) error {
	for i := 0; i < len(s); i++ {
		if s[i] <= ArrayClose {
			return fmt.Errorf("holds byte %d at offset %d", s[i], i)
		}
	}
	return nil
}
