package rewrite

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "rewrite testdata/corpus/*.yaml with the current analysis (review the diff!)")

// corpusCase is one statement of testdata/corpus: the SQL, and what the
// analyzer and a global max_rows of corpusLimit must make of it.
type corpusCase struct {
	Name string `yaml:"name"`
	SQL  string `yaml:"sql"`
	// Args are the parameter values pg_test.go binds when it runs the SQL.
	Args []any `yaml:"args,omitempty,flow"`
	// Run marks statements that run on testdata/schema.sql.
	Run  bool        `yaml:"run,omitempty"`
	Want *corpusWant `yaml:"want,omitempty"`
}

type corpusWant struct {
	Statements []wantStmt `yaml:"statements"`
	// Limited is the text sent with max_rows: 10 ("" = unchanged).
	Limited string `yaml:"limited,omitempty"`
	MaxRows int    `yaml:"max_rows,omitempty"`
	Cache   string `yaml:"cache,omitempty"`
}

type wantStmt struct {
	Kind       string   `yaml:"kind"`
	ReadOnly   bool     `yaml:"read_only,omitempty"`
	Reads      []string `yaml:"reads,omitempty,flow"`
	Writes     []string `yaml:"writes,omitempty,flow"`
	Functions  []string `yaml:"functions,omitempty,flow"`
	Locking    bool     `yaml:"locking,omitempty"`
	TxControl  string   `yaml:"tx_control,omitempty"`
	State      []string `yaml:"session_state,omitempty,flow"`
	Temp       bool     `yaml:"temp,omitempty"`
	ParseError bool     `yaml:"parse_error,omitempty"`
	Normalized string   `yaml:"normalized,omitempty"`
}

// corpusLimit is the global max_rows the corpus expectations use.
const corpusLimit = 10

func describe(d *Decision) *corpusWant {
	w := &corpusWant{Statements: []wantStmt{}}
	for _, st := range d.Statements {
		ws := wantStmt{Kind: st.Kind, ReadOnly: st.ReadOnly, Locking: st.Locking, TxControl: st.TxControl,
			Temp: st.TempObjects, ParseError: st.ParseError != "", Normalized: st.Normalized, Functions: st.Functions}
		for _, r := range st.Reads {
			ws.Reads = append(ws.Reads, r.String())
		}
		for _, r := range st.Writes {
			ws.Writes = append(ws.Writes, r.String())
		}
		for _, s := range st.SessionState {
			ws.State = append(ws.State, describeState(s))
		}
		w.Statements = append(w.Statements, ws)
	}
	if d.Rewritten {
		w.Limited = d.SQL
	}
	w.MaxRows = d.MaxRows
	if d.Cache.Set {
		w.Cache = fmt.Sprintf("off=%v ttl=%s", d.Cache.Off, d.Cache.TTL)
	}
	return w
}

func describeState(s StateChange) string {
	out := s.Kind + ":" + s.Name
	if s.Value != "" {
		out += "=" + s.Value
	}
	if s.Local {
		out += " local"
	}
	if s.IsReset {
		out += " reset"
	}
	return out
}

func loadCorpus(t testing.TB) map[string][]corpusCase {
	t.Helper()
	files, err := filepath.Glob("testdata/corpus/*.yaml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no corpus files: %v", err)
	}
	out := map[string][]corpusCase{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var cases []corpusCase
		if err := yaml.Unmarshal(b, &cases); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out[f] = cases
	}
	return out
}

func corpusEngine(t testing.TB) *Engine {
	t.Helper()
	cfg := DefaultConfig()
	cfg.MaxRows = corpusLimit
	e, err := NewEngine(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TestCorpus checks the analysis and the max_rows rewrite of every corpus
// statement against its recorded expectation.
func TestCorpus(t *testing.T) {
	e := corpusEngine(t)
	total := 0
	names := map[string]bool{}
	for file, cases := range loadCorpus(t) {
		for i := range cases {
			c := &cases[i]
			total++
			if names[c.Name] {
				t.Errorf("%s: duplicate case name %q", file, c.Name)
			}
			names[c.Name] = true
			got := describe(e.Process(c.SQL, Session{}))
			if *update {
				c.Want = got
				continue
			}
			if c.Want == nil {
				t.Errorf("%s: %s: no expectation (run with -update and review)", file, c.Name)
				continue
			}
			gb, _ := yaml.Marshal(got)
			wb, _ := yaml.Marshal(c.Want)
			if !bytes.Equal(gb, wb) {
				t.Errorf("%s: %s: %q\n--- want\n%s--- got\n%s", file, c.Name, c.SQL, wb, gb)
			}
		}
		if *update {
			writeCorpus(t, file, cases)
		}
	}
	if total < 150 {
		t.Errorf("corpus has %d statements, want >= 150", total)
	}
}

func writeCorpus(t *testing.T, file string, cases []corpusCase) {
	old, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var header strings.Builder
	for _, line := range strings.SplitAfter(string(old), "\n") {
		if !strings.HasPrefix(line, "#") {
			break
		}
		header.WriteString(line)
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(cases); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(file, append([]byte(header.String()), buf.Bytes()...), 0o644); err != nil {
		t.Fatal(err)
	}
}
