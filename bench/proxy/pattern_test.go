package main

import (
	"bytes"
	"io"
	"testing"
	"testing/iotest"
)

func TestPattern(t *testing.T) {
	const size = 3*patternBlock + 12345
	want, err := io.ReadAll(newPattern(size))
	if err != nil {
		t.Fatal(err)
	}
	if len(want) != size {
		t.Fatalf("read %d bytes, want %d", len(want), size)
	}
	// Read in odd pieces, the same bytes come out.
	if err := iotest.TestReader(newPattern(size), want); err != nil {
		t.Error(err)
	}
	got, err := io.ReadAll(iotest.OneByteReader(newPattern(size)))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Error("one-byte reads differ from whole reads")
	}
	if bytes.Equal(want[:patternBlock], want[patternBlock:2*patternBlock]) {
		t.Error("two blocks are alike")
	}
}

func TestByteSize(t *testing.T) {
	tests := []struct {
		in      string
		want    byteSize
		str     string
		wantErr bool
	}{
		{"1GiB", 1 << 30, "1GiB", false},
		{"128MiB", 128 << 20, "128MiB", false},
		{"1048576", 1 << 20, "1MiB", false},
		{"2GB", 2e9, "1907.3MiB", false},
		{"5 KiB", 5 << 10, "5KiB", false},
		{"1.5GiB", 0, "", true},
		{"-1", 0, "", true},
		{"big", 0, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			var got byteSize
			err := got.Set(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("Set(%q) error = %v, want error %t", tc.in, err, tc.wantErr)
			}
			if tc.wantErr {
				return
			}
			if got != tc.want || got.String() != tc.str {
				t.Errorf("Set(%q) = %d (%s), want %d (%s)", tc.in, got, got, tc.want, tc.str)
			}
		})
	}
}
