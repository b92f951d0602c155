package resultcache

import "testing"

func baseKeyInput() KeyInput {
	return KeyInput{
		Database: "app", Role: "alice", SearchPath: `"$user", public`,
		Settings: []string{"UTF8", "ISO, MDY", "postgres", "UTC", "1", "hex", "on", "C", "C", "C", "Default", "on", "off", "base64", "content", "on"},
		SQL:      "select * from t where id = $1", Protocol: 'E', Described: true,
		ParamFormats: []int16{0}, Params: [][]byte{[]byte("1")}, ResultFormats: []int16{1},
	}
}

// Every field must change the key; NULL and empty parameters must differ;
// length prefixes must keep shifted boundaries apart.
func TestMakeKeyDistinguishes(t *testing.T) {
	base := MakeKey(ptr(baseKeyInput()))
	if base != MakeKey(ptr(baseKeyInput())) {
		t.Fatal("key not deterministic")
	}
	muts := map[string]func(k *KeyInput){
		"database":       func(k *KeyInput) { k.Database = "app2" },
		"role":           func(k *KeyInput) { k.Role = "bob" },
		"search_path":    func(k *KeyInput) { k.SearchPath = "public" },
		"setting":        func(k *KeyInput) { k.Settings[3] = "Europe/Paris" },
		"sql":            func(k *KeyInput) { k.SQL += " " },
		"protocol":       func(k *KeyInput) { k.Protocol = 'Q' },
		"described":      func(k *KeyInput) { k.Described = false },
		"param format":   func(k *KeyInput) { k.ParamFormats = []int16{1} },
		"param value":    func(k *KeyInput) { k.Params = [][]byte{[]byte("2")} },
		"null param":     func(k *KeyInput) { k.Params = [][]byte{nil} },
		"empty param":    func(k *KeyInput) { k.Params = [][]byte{{}} },
		"result formats": func(k *KeyInput) { k.ResultFormats = []int16{0} },
		"boundary shift": func(k *KeyInput) { k.Database, k.Role = "appa", "lice" },
		"param split":    func(k *KeyInput) { k.Params = [][]byte{[]byte("1"), {}} },
	}
	seen := map[Key]string{base: "base"}
	for name, m := range muts {
		in := baseKeyInput()
		in.Settings = append([]string(nil), in.Settings...)
		m(&in)
		k := MakeKey(&in)
		if prev, dup := seen[k]; dup {
			t.Errorf("%s: same key as %s", name, prev)
		}
		seen[k] = name
	}
}

func ptr[T any](v T) *T { return &v }

func TestMakeKeyNoAlloc(t *testing.T) {
	in := baseKeyInput()
	MakeKey(&in)
	if n := testing.AllocsPerRun(100, func() { MakeKey(&in) }); n != 0 {
		t.Fatalf("MakeKey allocates %v times per call", n)
	}
}

func BenchmarkMakeKey(b *testing.B) {
	in := baseKeyInput()
	b.ReportAllocs()
	for b.Loop() {
		MakeKey(&in)
	}
}

func BenchmarkNormalizeCommentsTagged(b *testing.B) {
	sql := "select * from orders where customer_id = $1 /*traceparent='00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01',route='/orders'*/"
	b.ReportAllocs()
	for b.Loop() {
		NormalizeComments(sql)
	}
}
