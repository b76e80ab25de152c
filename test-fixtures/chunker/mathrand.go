// Writes the byte stream restic/chunker's test vectors are defined on: each value of Go's
// math/rand Uint32() (source seeded with the first argument) as 4 little-endian bytes, until the
// byte count given as second argument is reached.
package main

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"math/rand"
	"os"
	"strconv"
)

func main() {
	if len(os.Args) != 3 {
		fmt.Fprintln(os.Stderr, "usage: mathrand <seed> <bytes>")
		os.Exit(2)
	}
	seed, err1 := strconv.ParseInt(os.Args[1], 10, 64)
	count, err2 := strconv.Atoi(os.Args[2])
	if err1 != nil || err2 != nil || count%4 != 0 {
		fmt.Fprintln(os.Stderr, "mathrand: seed must be an integer, bytes a multiple of 4")
		os.Exit(2)
	}
	rnd := rand.New(rand.NewSource(seed))
	w := bufio.NewWriterSize(os.Stdout, 1<<20)
	var word [4]byte
	for i := 0; i < count; i += 4 {
		binary.LittleEndian.PutUint32(word[:], rnd.Uint32())
		w.Write(word[:])
	}
	if err := w.Flush(); err != nil {
		fmt.Fprintln(os.Stderr, "mathrand:", err)
		os.Exit(1)
	}
}
