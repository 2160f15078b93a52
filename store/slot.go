package store

import "strings"

// clusterSlots is the number of hash slots of Redis Cluster.
const clusterSlots = 16384

// keySlot is the Redis Cluster hash slot of a key or shard channel: CRC16
// (XMODEM) of its hash tag, or of the whole name when it has none. The
// subscriber needs it to know which node owns a shard channel and to keep
// each SSUBSCRIBE to one slot (Redis refuses a command whose channels span
// slots with CROSSSLOT). go-redis has the same function, but internal.
func keySlot(key string) int {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc = crc<<8 ^ crc16Table[byte(crc>>8)^key[i]]
	}
	return int(crc) % clusterSlots
}

var crc16Table = func() (t [256]uint16) {
	for i := range t {
		c := uint16(i) << 8
		for range 8 {
			if c&0x8000 != 0 {
				c = c<<1 ^ 0x1021
			} else {
				c <<= 1
			}
		}
		t[i] = c
	}
	return t
}()
