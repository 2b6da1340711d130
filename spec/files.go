package spec

import (
	"os"
	"path/filepath"
	"slices"

	"sigs.k8s.io/yaml"
)

// RevisionFiles lists the files a set of stacks is made of: the YAML files
// below paths (found as Load finds them) and the *.sql files in the
// migration folders their documents name (for drizzle-kit output, also
// meta/_journal.json and the <tag>.sql files it lists), as absolute paths. Nothing else
// in a folder (logs, backups, notes) is part of a revision. A document that
// does not parse still has its YAML file listed, so the revision holding it
// is loaded and rejected with the loader's errors.
func RevisionFiles(paths []string) ([]string, error) {
	files, err := findFiles(paths)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, file := range files {
		abs, err := filepath.Abs(file)
		if err != nil {
			return nil, err
		}
		out = append(out, abs)
		data, err := readSpecFile(file)
		if err != nil {
			continue
		}
		docs, err := splitDocuments(data)
		if err != nil {
			continue
		}
		for _, doc := range docs {
			var probe struct {
				Spec struct {
					Postgres *struct {
						Migrations *struct {
							Dir string `json:"dir"`
						} `json:"migrations"`
					} `json:"postgres"`
				} `json:"spec"`
			}
			if yaml.Unmarshal(doc.data, &probe) != nil || probe.Spec.Postgres == nil ||
				probe.Spec.Postgres.Migrations == nil || probe.Spec.Postgres.Migrations.Dir == "" {
				continue
			}
			dir := probe.Spec.Postgres.Migrations.Dir
			if !filepath.IsAbs(dir) {
				dir = filepath.Join(filepath.Dir(abs), dir)
			}
			entries, err := os.ReadDir(dir)
			if err != nil {
				continue
			}
			for _, e := range entries {
				if !e.IsDir() && filepath.Ext(e.Name()) == ".sql" {
					out = append(out, filepath.Join(dir, e.Name()))
				}
			}
			// drizzle: the journal decides what runs, so it is part of the
			// revision, and so is each file it lists (a tag's file may be
			// missing: the loader reports that).
			if _, err := os.Stat(filepath.Join(dir, JournalPath)); err == nil {
				out = append(out, filepath.Join(dir, JournalPath))
				tags, _ := journalTags(dir)
				for _, tag := range tags {
					out = append(out, filepath.Join(dir, tag+".sql"))
				}
			}
		}
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}
