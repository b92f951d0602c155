package config

import (
	"fmt"
	"reflect"
	"strings"
	"time"

	"gopkg.in/yaml.v3"
)

// decodeStrict decodes node into the struct v points at, field by field, so
// that every problem (unknown key, value of the wrong type) is reported with
// its full key path and line instead of stopping at the first, which is what
// check-config prints.
func decodeStrict(node *yaml.Node, v reflect.Value, path string, errs *[]error) {
	if node.Kind == 0 {
		return // empty file: defaults
	}
	if node.Kind == yaml.DocumentNode {
		if len(node.Content) == 0 {
			return
		}
		node = node.Content[0]
	}
	if node.Kind == yaml.AliasNode {
		node = node.Alias
	}
	t := v.Type()
	if customUnmarshaler(t) {
		if err := node.Decode(v.Addr().Interface()); err != nil {
			*errs = append(*errs, fmt.Errorf("line %d: %s: %v", node.Line, orRoot(path), err))
		}
		return
	}
	switch {
	case t.Kind() == reflect.Struct && t != durationType && t != timeType:
		if node.Kind != yaml.MappingNode {
			if node.Tag == "!!null" {
				return
			}
			*errs = append(*errs, fmt.Errorf("line %d: %s: expected a mapping", node.Line, orRoot(path)))
			return
		}
		fields := structFields(t)
		for i := 0; i+1 < len(node.Content); i += 2 {
			k, val := node.Content[i], node.Content[i+1]
			f, ok := fields[k.Value]
			if !ok {
				*errs = append(*errs, fmt.Errorf("line %d: %s: unknown key", k.Line, join(path, k.Value)))
				continue
			}
			decodeStrict(val, v.FieldByIndex(f), join(path, k.Value), errs)
		}
	case t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct:
		if node.Tag == "!!null" {
			return
		}
		if node.Kind != yaml.SequenceNode {
			*errs = append(*errs, fmt.Errorf("line %d: %s: expected a list", node.Line, path))
			return
		}
		s := reflect.MakeSlice(t, len(node.Content), len(node.Content))
		for i, item := range node.Content {
			decodeStrict(item, s.Index(i), fmt.Sprintf("%s[%d]", path, i), errs)
		}
		v.Set(s)
	case t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct:
		if node.Tag == "!!null" {
			return
		}
		p := reflect.New(t.Elem())
		decodeStrict(node, p.Elem(), path, errs)
		v.Set(p)
	default:
		if err := node.Decode(v.Addr().Interface()); err != nil {
			msg := err.Error()
			if te, ok := err.(*yaml.TypeError); ok && len(te.Errors) > 0 {
				msg = te.Errors[0]
				if i := strings.Index(msg, ": "); i >= 0 && strings.HasPrefix(msg, "line ") {
					msg = msg[i+2:]
				}
			}
			*errs = append(*errs, fmt.Errorf("line %d: %s: %s", node.Line, path, msg))
		}
	}
}

var (
	durationType = reflect.TypeOf(time.Duration(0))
	timeType     = reflect.TypeOf(time.Time{})
)

// structFields maps YAML keys to field index paths, flattening ",inline".
func structFields(t reflect.Type) map[string][]int {
	out := map[string][]int{}
	var walk func(t reflect.Type, prefix []int)
	walk = func(t reflect.Type, prefix []int) {
		for i := 0; i < t.NumField(); i++ {
			f := t.Field(i)
			if !f.IsExported() {
				continue
			}
			name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
			if name == "-" {
				continue
			}
			idx := append(append([]int{}, prefix...), i)
			if strings.Contains(opts, "inline") {
				walk(f.Type, idx)
				continue
			}
			if name == "" {
				name = strings.ToLower(f.Name)
			}
			out[name] = idx
		}
	}
	walk(t, nil)
	return out
}

func join(path, key string) string {
	if path == "" {
		return key
	}
	return path + "." + key
}

func orRoot(path string) string {
	if path == "" {
		return "(root)"
	}
	return path
}

var unmarshalerType = reflect.TypeOf((*yaml.Unmarshaler)(nil)).Elem()

// customUnmarshaler: a type that decodes itself (e.g. `cache: off` or
// `cache: {ttl: 30s}`) is handed its node whole.
func customUnmarshaler(t reflect.Type) bool {
	if reflect.PointerTo(t).Implements(unmarshalerType) {
		return true
	}
	return t.Kind() == reflect.Pointer && t.Implements(unmarshalerType)
}
