package storage_test

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// destructive are the afero.Fs methods that delete or move user files.
var destructive = []string{"Remove", "RemoveAll", "Rename"}

// TestOneDeletionPipeline is a vet-style check of the module's sources:
// outside the storage layer, no code calls Remove, RemoveAll or Rename on
// anything but package os (a program's own temporary files), so every
// destructive act on user storage goes through storage.Delete. Inside the
// storage layer only the pipeline, the careful write and the RootFs
// methods that implement those calls may.
func TestOneDeletionPipeline(t *testing.T) {
	t.Parallel()
	root := filepath.Join("..", "..")
	// Files of package storage allowed to call them, and the backend and
	// backend-testing packages, which implement and exercise them.
	allowed := []string{
		"filefield/storage/delete.go",  // the pipeline
		"filefield/storage/remove.go",  // its fallbacks: RemoveFiles, MoveFile
		"filefield/storage/pending.go", // the careful write's own temp file
		"filefield/storage/tempdir.go", // TempFile: this process's scratch files
	}
	// The backends implement those calls; storagetest forwards and
	// exercises them.
	exempt := []string{"filefield/storage/rootfs/", "filefield/storage/s3fs/", "filefield/storage/storagetest/"}
	checked := 0
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel := filepath.ToSlash(strings.TrimPrefix(p, root+string(filepath.Separator)))
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".") && p != root {
				return fs.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(rel, ".go") || strings.HasSuffix(rel, "_test.go") || slices.Contains(allowed, rel) {
			return nil
		}
		for _, e := range exempt {
			if strings.HasPrefix(rel, e) {
				return nil
			}
		}
		f, err := parser.ParseFile(token.NewFileSet(), p, nil, 0)
		if err != nil {
			return err
		}
		checked++
		for _, name := range destructiveCalls(f, !strings.HasPrefix(rel, "filefield/storage/")) {
			t.Errorf("%s: a call to %s outside the deletion pipeline: use storage.Delete", rel, name)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if checked < 30 {
		t.Fatalf("checked only %d files: is the module root %s?", checked, root)
	}
}

// destructiveCalls returns the destructive calls in f; allowOS lets calls
// on package os through.
func destructiveCalls(f *ast.File, allowOS bool) []string {
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		call, ok := n.(*ast.CallExpr)
		if !ok {
			return true
		}
		sel, ok := call.Fun.(*ast.SelectorExpr)
		if !ok || !slices.Contains(destructive, sel.Sel.Name) {
			return true
		}
		if id, ok := sel.X.(*ast.Ident); ok && id.Name == "os" && allowOS {
			return true // a local file the program made, not user storage
		}
		out = append(out, sel.Sel.Name)
		return true
	})
	return out
}

// The check finds what it must: a direct call on a filesystem value, in
// any form.
func TestOneDeletionPipelineCheckFindsCalls(t *testing.T) {
	t.Parallel()
	src := `package p
func f() {
	fsys.Remove("a")
	s.fs.RemoveAll("b")
	_ = getFs().Rename("c", "d")
	os.Remove("local")
}`
	f, err := parser.ParseFile(token.NewFileSet(), "p.go", src, 0)
	if err != nil {
		t.Fatal(err)
	}
	if got := destructiveCalls(f, true); !slices.Equal(got, []string{"Remove", "RemoveAll", "Rename"}) {
		t.Fatalf("found %q", got)
	}
}
