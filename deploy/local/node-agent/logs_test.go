package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

var t0 = time.Date(2025, 1, 2, 3, 4, 5, 120000000, time.UTC)

func TestAppendEntryFormat(t *testing.T) {
	got := string(appendEntry(nil, t0, "stdout", false, []byte("hello world")))
	want := "2025-01-02T03:04:05.120000000Z stdout F hello world\n"
	if got != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	got = string(appendEntry(nil, t0.In(time.FixedZone("x", 3600)), "stderr", true, nil))
	if want := "2025-01-02T03:04:05.120000000Z stderr P \n"; got != want {
		t.Fatalf("got %q, want %q (UTC, empty partial)", got, want)
	}
}

func TestParseEntryRoundTrip(t *testing.T) {
	for _, c := range []struct {
		stream  string
		partial bool
		content string
	}{{"stdout", false, "a b  c"}, {"stderr", true, "x"}, {"stdout", false, ""}} {
		line := appendEntry(nil, t0, c.stream, c.partial, []byte(c.content))
		e, err := parseEntry(line)
		if err != nil {
			t.Fatal(err)
		}
		if !e.ts.Equal(t0) || string(e.stream) != c.stream || e.partial != c.partial || string(e.content) != c.content {
			t.Fatalf("round trip of %q gave %+v", line, e)
		}
	}
	for _, bad := range []string{"", "nonsense", "2025-01-02T03:04:05Z stdout", "2025-01-02T03:04:05Z stdout X hi", "notatime stdout F hi"} {
		if _, err := parseEntry([]byte(bad)); err == nil {
			t.Errorf("parseEntry(%q) succeeded", bad)
		}
	}
}

func TestAppendOutput(t *testing.T) {
	e := logEntry{ts: t0, content: []byte("line"), partial: false}
	if got := string(appendOutput(nil, e, false)); got != "line\n" {
		t.Fatalf("got %q", got)
	}
	if got := string(appendOutput(nil, e, true)); got != "2025-01-02T03:04:05.120000000Z line\n" {
		t.Fatalf("got %q", got)
	}
	e.partial = true
	if got := string(appendOutput(nil, e, false)); got != "line" {
		t.Fatalf("partial: got %q", got)
	}
}

// newTestLog creates a liveLog with a deterministic clock: entry i is
// stamped t0 + i seconds.
func newTestLog(t *testing.T) (*liveLog, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "0.log")
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	l := newLiveLog(f)
	n := 0
	l.now = func() time.Time { n++; return t0.Add(time.Duration(n-1) * time.Second) }
	return l, path
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestCopyStreamLinesPartialsAndNoTrailingNewline(t *testing.T) {
	l, path := newTestLog(t)
	long := strings.Repeat("x", maxEntryContent+10)
	in := "one\n\ntwo\n" + long + "\ntail-without-newline"
	if err := l.copyStream(strings.NewReader(in), "stdout"); err != nil {
		t.Fatal(err)
	}
	l.finish()
	lines := strings.Split(strings.TrimSuffix(readFile(t, path), "\n"), "\n")
	var tags []string
	for _, ln := range lines {
		e, err := parseEntry([]byte(ln))
		if err != nil {
			t.Fatalf("bad line %q: %v", ln, err)
		}
		tags = append(tags, fmt.Sprintf("%c%d", map[bool]byte{true: 'P', false: 'F'}[e.partial], len(e.content)))
	}
	want := []string{"F3", "F0", "F3", fmt.Sprintf("P%d", maxEntryContent), "F10", "P20"}
	if strings.Join(tags, " ") != strings.Join(want, " ") {
		t.Fatalf("entries %v, want %v", tags, want)
	}
	// Reading back reproduces the exact bytes.
	got := readAll(t, path, logReadOptions{tail: -1}, nil)
	if got != in {
		t.Fatalf("read back %d bytes, want %d", len(got), len(in))
	}
}

func readAll(t *testing.T, path string, o logReadOptions, live *liveLog) string {
	t.Helper()
	r, err := openLogReader(context.Background(), path, o, live)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// writeLines writes n lines "line-<i>" stamped t0+i seconds.
func writeLines(t *testing.T, n int) string {
	t.Helper()
	l, path := newTestLog(t)
	var b strings.Builder
	for i := range n {
		fmt.Fprintf(&b, "line-%d\n", i)
	}
	if err := l.copyStream(strings.NewReader(b.String()), "stdout"); err != nil {
		t.Fatal(err)
	}
	l.finish()
	return path
}

func TestReadTail(t *testing.T) {
	path := writeLines(t, 10)
	cases := map[int]string{
		0:  "",
		1:  "line-9\n",
		3:  "line-7\nline-8\nline-9\n",
		10: readAll(t, path, logReadOptions{tail: -1}, nil),
		50: readAll(t, path, logReadOptions{tail: -1}, nil),
	}
	for n, want := range cases {
		if got := readAll(t, path, logReadOptions{tail: n}, nil); got != want {
			t.Errorf("tail %d: got %q, want %q", n, got, want)
		}
	}
}

func TestReadTailAcrossBlocks(t *testing.T) {
	path := writeLines(t, 20000) // ~1 MB: many 64 KiB blocks
	got := readAll(t, path, logReadOptions{tail: 2}, nil)
	if got != "line-19998\nline-19999\n" {
		t.Fatalf("got %q", got)
	}
	got = readAll(t, path, logReadOptions{tail: 15000}, nil)
	if !strings.HasPrefix(got, "line-5000\n") || strings.Count(got, "\n") != 15000 {
		t.Fatalf("tail 15000 starts %q with %d lines", got[:20], strings.Count(got, "\n"))
	}
}

func TestReadSinceAndTimestamps(t *testing.T) {
	path := writeLines(t, 5)
	got := readAll(t, path, logReadOptions{tail: -1, since: t0.Add(3 * time.Second)}, nil)
	if got != "line-3\nline-4\n" {
		t.Fatalf("since: got %q", got)
	}
	got = readAll(t, path, logReadOptions{tail: -1, timestamps: true}, nil)
	re := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z line-\d$`)
	lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
	if len(lines) != 5 {
		t.Fatalf("got %d lines", len(lines))
	}
	for _, ln := range lines {
		if !re.MatchString(ln) {
			t.Fatalf("line %q does not match %v", ln, re)
		}
	}
	if lines[2] != "2025-01-02T03:04:07.120000000Z line-2" {
		t.Fatalf("got %q", lines[2])
	}
	// tail then since, as kubelet applies them.
	got = readAll(t, path, logReadOptions{tail: 3, since: t0.Add(3 * time.Second)}, nil)
	if got != "line-3\nline-4\n" {
		t.Fatalf("tail+since: got %q", got)
	}
}

func TestReadLimitBytes(t *testing.T) {
	path := writeLines(t, 5)
	if got := readAll(t, path, logReadOptions{tail: -1, limitBytes: 9}, nil); got != "line-0\nli" {
		t.Fatalf("got %q", got)
	}
	if got := readAll(t, path, logReadOptions{tail: -1, limitBytes: 7}, nil); got != "line-0\n" {
		t.Fatalf("got %q", got)
	}
	if got := readAll(t, path, logReadOptions{tail: -1, limitBytes: 1000}, nil); strings.Count(got, "\n") != 5 {
		t.Fatalf("got %q", got)
	}
}

func TestReadSmallBuffersStream(t *testing.T) {
	path := writeLines(t, 100)
	r, err := openLogReader(context.Background(), path, logReadOptions{tail: -1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var b strings.Builder
	buf := make([]byte, 3)
	for {
		n, err := r.Read(buf)
		b.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if b.String() != readAll(t, path, logReadOptions{tail: -1}, nil) || strings.Count(b.String(), "\n") != 100 {
		t.Fatal("reading with a 3-byte buffer gave different output")
	}
}

func TestFollowStreamsUntilWriterFinishes(t *testing.T) {
	l, path := newTestLog(t)
	pr, pw := io.Pipe()
	done := make(chan struct{})
	go func() {
		l.copyStream(pr, "stdout")
		l.finish()
		close(done)
	}()
	io.WriteString(pw, "first\n")
	r, err := openLogReader(context.Background(), path, logReadOptions{tail: -1, follow: true}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	got := make(chan string)
	go func() {
		b, _ := io.ReadAll(r)
		got <- string(b)
	}()
	time.Sleep(50 * time.Millisecond)
	io.WriteString(pw, "second\nthird")
	time.Sleep(50 * time.Millisecond)
	pw.Close()
	<-done
	select {
	case s := <-got:
		if s != "first\nsecond\nthird" {
			t.Fatalf("got %q", s)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("follow did not end after the writer finished")
	}
}

func TestFollowStopsOnContextCancel(t *testing.T) {
	l, path := newTestLog(t)
	l.write("stdout", false, []byte("x"))
	ctx, cancel := context.WithCancel(context.Background())
	r, err := openLogReader(ctx, path, logReadOptions{tail: -1, follow: true}, l)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	buf := make([]byte, 100)
	if n, err := r.Read(buf); err != nil || string(buf[:n]) != "x\n" {
		t.Fatalf("first read: %q %v", buf[:n], err)
	}
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	if n, err := r.Read(buf); err != io.EOF || n != 0 {
		t.Fatalf("read after cancel: %d, %v; want a quiet EOF", n, err)
	}
}

func TestFollowWithoutLiveWriterIsPlainRead(t *testing.T) {
	path := writeLines(t, 3)
	if got := readAll(t, path, logReadOptions{tail: -1, follow: true}, nil); got != "line-0\nline-1\nline-2\n" {
		t.Fatalf("got %q", got)
	}
}
