package config

import (
	"fmt"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// EnvPrefix starts every environment override: the YAML key path in upper
// case joined by '_', e.g. SLUICE_POOL_DEFAULT_POOL_SIZE for
// pool.default_pool_size. Only scalar keys outside lists can be overridden.
const EnvPrefix = "SLUICE_"

// applyEnv sets scalar fields from the environment (lookup is os.LookupEnv
// in production, a map in tests) and reports bad values by variable name.
func applyEnv(v reflect.Value, path []string, lookup func(string) (string, bool), errs *[]error) {
	t := v.Type()
	if t.Kind() == reflect.Pointer {
		if v.IsNil() {
			return
		}
		applyEnv(v.Elem(), path, lookup, errs)
		return
	}
	if t.Kind() != reflect.Struct || t == durationType || t == timeType {
		if t.Kind() == reflect.Slice && t.Elem().Kind() == reflect.Struct {
			return
		}
		name := EnvPrefix + strings.ToUpper(strings.Join(path, "_"))
		val, ok := lookup(name)
		if !ok {
			return
		}
		var node yaml.Node
		if err := yaml.Unmarshal([]byte(val), &node); err != nil || len(node.Content) == 0 {
			// Not valid YAML on its own (e.g. a bare '%'): take it as a string.
			node = yaml.Node{Kind: yaml.DocumentNode, Content: []*yaml.Node{{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}}}
		}
		target := node.Content[0]
		if t.Kind() == reflect.String {
			target = &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: val}
		}
		if err := target.Decode(v.Addr().Interface()); err != nil {
			*errs = append(*errs, fmt.Errorf("%s: bad value %q for %s", name, val, strings.Join(path, ".")))
		}
		return
	}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		name, opts, _ := strings.Cut(f.Tag.Get("yaml"), ",")
		if name == "-" {
			continue
		}
		if strings.Contains(opts, "inline") {
			applyEnv(v.Field(i), path, lookup, errs)
			continue
		}
		if name == "" {
			name = strings.ToLower(f.Name)
		}
		applyEnv(v.Field(i), append(append([]string{}, path...), name), lookup, errs)
	}
}
