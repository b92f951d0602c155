package resultcache

import "strings"

// parseSearchPath splits a search_path value as PostgreSQL's
// SplitIdentifierString does: comma-separated, double-quoted names keep
// their case (a doubled quote is a quote), unquoted names are lowercased,
// and "$user" stands for the role name.
func parseSearchPath(sp, user string) []string {
	var out []string
	for i := 0; i < len(sp); {
		for i < len(sp) && (isSpace(sp[i]) || sp[i] == ',') {
			i++
		}
		if i >= len(sp) {
			break
		}
		var name string
		if sp[i] == '"' {
			var b strings.Builder
			j := i + 1
			for j < len(sp) {
				if sp[j] == '"' {
					if j+1 < len(sp) && sp[j+1] == '"' {
						b.WriteByte('"')
						j += 2
						continue
					}
					break
				}
				b.WriteByte(sp[j])
				j++
			}
			name = b.String()
			i = j + 1
		} else {
			j := i
			for j < len(sp) && sp[j] != ',' {
				j++
			}
			name = strings.ToLower(strings.TrimSpace(sp[i:j]))
			i = j
		}
		if name == "$user" { // quoted or not, as in namespace.c
			name = user
		}
		if name != "" {
			out = append(out, name)
		}
	}
	return out
}

// effectivePath is the list of schemas searched for an unqualified
// relation or function: pg_catalog first unless the path places it
// explicitly (namespace.c, recomputeNamespacePath), then the path's
// existing schemas. pg_temp is handled by the caller.
func effectivePath(path []string, schemas map[string]bool) []string {
	out := make([]string, 0, len(path)+1)
	hasCatalog := false
	for _, s := range path {
		if s == "pg_catalog" {
			hasCatalog = true
		}
	}
	if !hasCatalog {
		out = append(out, "pg_catalog")
	}
	for _, s := range path {
		if isTempSchema(s) || !schemas[s] {
			continue
		}
		out = append(out, s)
	}
	return out
}

func isTempSchema(s string) bool {
	return s == "pg_temp" || strings.HasPrefix(s, "pg_temp_") || strings.HasPrefix(s, "pg_toast_temp_")
}

func isSystemSchema(s string) bool {
	return s == "pg_catalog" || s == "information_schema" || s == "pg_toast"
}
