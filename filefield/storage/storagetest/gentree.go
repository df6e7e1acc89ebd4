package storagetest

import (
	"fmt"
	"time"

	"github.com/spf13/afero"
)

// Tree describes a generated benchmark tree: Files files, PerDir to a
// directory, sizes cycling from 1 to 4 kB, every other file (the even
// ones) dated Old, the rest New.
type Tree struct {
	Files  int       // how many files
	PerDir int       // zero means 1000
	Old    time.Time // mtime of even-numbered files
	New    time.Time // mtime of odd-numbered files; zero leaves it as written
}

// Path returns the stored path of file i.
func (t Tree) Path(i int) string {
	per := t.PerDir
	if per == 0 {
		per = 1000
	}
	return fmt.Sprintf("d%05d/f%08d.png", i/per, i)
}

// Generate writes the tree into fsys.
func (t Tree) Generate(fsys afero.Fs) error {
	per := t.PerDir
	if per == 0 {
		per = 1000
	}
	data := make([]byte, 4096)
	for i := range t.Files {
		p := t.Path(i)
		if i%per == 0 {
			if err := fsys.MkdirAll(p[:len("d00000")], 0o755); err != nil {
				return err
			}
		}
		if err := afero.WriteFile(fsys, p, data[:1024*(1+i%4)], 0o644); err != nil {
			return err
		}
		mt := t.New
		if i%2 == 0 {
			mt = t.Old
		}
		if !mt.IsZero() {
			if err := fsys.Chtimes(p, mt, mt); err != nil {
				return err
			}
		}
	}
	return nil
}
