package gormfield_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"gorm.io/gorm"
	"gorm.io/gorm/logger"

	"github.com/mediaclean/mediaclean/filefield"
	"github.com/mediaclean/mediaclean/filefield/gormfield"
)

// txRunner runs fn in a transaction whose statements a scope covers:
// gormfield.Transaction, or gorm's own db.Transaction with a scope in the
// context that the caller ends with the transaction's outcome.
type txRunner struct {
	name string
	run  func(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error
}

var s13Runners = []txRunner{
	{"gormfield.Transaction", func(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
		_, err := gormfield.Transaction(ctx, db, fn)
		return err
	}},
	{"gorm.Transaction+scope", func(ctx context.Context, db *gorm.DB, fn func(tx *gorm.DB) error) error {
		sctx, s := filefield.NewScope(ctx)
		err := db.WithContext(sctx).Transaction(fn)
		s.End(ctx, err)
		return err
	}},
}

// Manual savepoints: tx.SavePoint("a"), a tracked write, tx.RollbackTo("a"),
// then a commit. The row holds its old picture again: the old file must
// stay, whoever made the upload (no scope and Added, no scope and only
// claimed, or the transaction's scope), and whatever the handler's
// deferred Rollback does afterwards. Variants: an update, a hard delete,
// and an update rolled back then redone (the row holds the upload then).
func TestS13ProbeManualSavepointRollbackTo(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, r := range s13Runners {
			for _, made := range []string{"noscope+Add", "noscope", "inscope"} {
				for _, op := range []string{"update", "delete", "update-redo", "update-other"} {
					if op == "delete" && made != "noscope" {
						continue // TestS13ProbeUnclaimedReplaceManualSavepoint
					}
					t.Run(fmt.Sprintf("%s/%s/%s/%s", k.name, r.name, made, op), func(t *testing.T) {
						t.Parallel()
						a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
						u := a.newUser(t, "ada")
						ctx := t.Context()
						var ch *filefield.Change
						var err error
						if made != "inscope" {
							ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
							require.NoError(t, err)
						}
						err = r.run(ctx, a.db, func(tx *gorm.DB) error {
							tctx := tx.Statement.Context
							switch made {
							case "noscope+Add":
								if _, err := filefield.ScopeFrom(tctx).Add(ch, nil); err != nil {
									return err
								}
							case "inscope":
								var err error
								if ch, err = a.pics.Replace(tctx, u.Picture, upload("new")); err != nil {
									return err
								}
							}
							if err := tx.SavePoint("a").Error; err != nil {
								return err
							}
							switch op {
							case "delete":
								if err := tx.Unscoped().Delete(&User{ID: u.ID}).Error; err != nil {
									return err
								}
							default:
								if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
									return err
								}
							}
							if err := tx.RollbackTo("a").Error; err != nil {
								return err
							}
							switch op {
							case "update-redo":
								return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
							case "update-other":
								return tx.Model(&User{ID: u.ID}).Update("name", "ada2").Error
							}
							return nil
						})
						require.NoError(t, err)
						ch.Rollback(ctx) // the handler's deferred Rollback
						row := a.user(t, u.ID).Picture
						if op == "update-redo" {
							require.Equal(t, ch.New, row)
						} else {
							require.Equal(t, u.Picture, row)
						}
						assert.Contains(t, a.files(t), row, "the committed row's file was deleted; files %v", a.files(t))
					})
				}
			}
		}
	}
}

// Found in session 13 (contract-level; documented, not changed). The
// handler's Replace(old) change sits in the transaction's scope (Added,
// or made with the scope's context); inside a manual savepoint the row is
// deleted, then tx.RollbackTo("a") brings the row back, still naming old,
// and the transaction commits. No statement wrote the upload's path, so
// the plugin never claimed the change nor gave it its reference check:
// without one, the scope's commit deletes old, which the committed row
// names (the README lists savepoints behind a scope's back as not
// guaranteed; it said the plugin always asks, which holds only for what
// it registers and claims). A check the handler attaches to its change
// (Change.CheckRefs, or the field's Options.Refs) keeps it: this test
// attaches one.
func TestS13ProbeUnclaimedReplaceManualSavepoint(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, r := range s13Runners {
			for _, made := range []string{"noscope+Add", "inscope"} {
				t.Run(fmt.Sprintf("%s/%s/%s", k.name, r.name, made), func(t *testing.T) {
					t.Parallel()
					a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
					u := a.newUser(t, "ada")
					ctx := t.Context()
					var ch *filefield.Change
					var err error
					if made != "inscope" {
						ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
						require.NoError(t, err)
					}
					refs := filefield.RefCheckerFunc(func(ctx context.Context, p string) (bool, error) {
						var n int64
						err := a.db.WithContext(ctx).Model(&User{}).Where("picture = ?", p).Count(&n).Error
						return n > 0, err
					})
					err = r.run(ctx, a.db, func(tx *gorm.DB) error {
						tctx := tx.Statement.Context
						if made == "inscope" {
							var err error
							if ch, err = a.pics.Replace(tctx, u.Picture, upload("new")); err != nil {
								return err
							}
						} else if _, err := filefield.ScopeFrom(tctx).Add(ch, nil); err != nil {
							return err
						}
						ch.CheckRefs(refs)
						if err := tx.SavePoint("a").Error; err != nil {
							return err
						}
						if err := tx.Unscoped().Delete(&User{ID: u.ID}).Error; err != nil {
							return err
						}
						return tx.RollbackTo("a").Error
					})
					require.NoError(t, err)
					ch.Rollback(ctx)
					row := a.user(t, u.ID).Picture
					require.Equal(t, u.Picture, row)
					assert.Contains(t, a.files(t), row, "the committed row's file was deleted; files %v", a.files(t))
				})
			}
		}
	}
}

// A manual savepoint around a nested gormfield.Transaction that commits
// (releases): the outer RollbackTo undoes the nested write behind both
// scopes' backs. The old file the row holds again must stay.
func TestS13ProbeManualSavepointAroundNestedTransaction(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, made := range []string{"noscope", "noscope+Add", "inscope-child"} {
			t.Run(k.name+"/"+made, func(t *testing.T) {
				t.Parallel()
				a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
				u := a.newUser(t, "ada")
				ctx := t.Context()
				var ch *filefield.Change
				var err error
				if made != "inscope-child" {
					ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
					require.NoError(t, err)
				}
				_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
					if made == "noscope+Add" {
						if _, err := filefield.ScopeFrom(tx.Statement.Context).Add(ch, nil); err != nil {
							return err
						}
					}
					if err := tx.SavePoint("a").Error; err != nil {
						return err
					}
					if _, err := gormfield.Transaction(tx.Statement.Context, tx, func(tx2 *gorm.DB) error {
						if made == "inscope-child" {
							var err error
							if ch, err = a.pics.Replace(tx2.Statement.Context, u.Picture, upload("new")); err != nil {
								return err
							}
						}
						return tx2.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
					}); err != nil {
						return err
					}
					return tx.RollbackTo("a").Error
				})
				require.NoError(t, err)
				ch.Rollback(ctx)
				row := a.user(t, u.ID).Picture
				require.Equal(t, u.Picture, row)
				assert.Contains(t, a.files(t), row, "the committed row's file was deleted; files %v", a.files(t))
			})
		}
	}
}

var errS13Retry = errors.New("40001 could not serialize access")

// The handler stores its upload in no scope (defer ch.Rollback), then
// retries a transaction: each attempt Adds ch to its scope and writes
// it (the plugin claims it too). The first attempt fails (fn's error, or
// a failed commit: a deferred foreign key), the retry commits, then the
// deferred Rollback runs. The committed row's file must stay, and the old
// one (Replace's Old) may go.
func TestS13ProbeRetryAfterAddAndClaim(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, r := range s13Runners {
			for _, how := range []string{"fn-error", "commit-fails"} {
				for _, made := range []string{"Save", "Replace"} {
					t.Run(fmt.Sprintf("%s/%s/%s/%s", k.name, r.name, how, made), func(t *testing.T) {
						t.Parallel()
						a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
						u := a.newUser(t, "ada")
						ctx := t.Context()
						var ch *filefield.Change
						var err error
						if made == "Save" {
							ch, err = a.pics.Save(ctx, upload("new"))
						} else {
							ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
						}
						require.NoError(t, err)
						for attempt := 0; attempt < 3; attempt++ {
							err = r.run(ctx, a.db, func(tx *gorm.DB) error {
								if _, err := filefield.ScopeFrom(tx.Statement.Context).Add(ch, nil); err != nil {
									return err
								}
								if err := tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error; err != nil {
									return err
								}
								if attempt == 0 {
									if how == "fn-error" {
										return errS13Retry
									}
									return tx.Exec(`INSERT INTO audits (id, user_id) VALUES (1, 9999)`).Error
								}
								return nil
							})
							if err == nil {
								break
							}
						}
						require.NoError(t, err)
						ch.Rollback(ctx) // deferred
						require.Equal(t, ch.New, a.user(t, u.ID).Picture)
						assert.Contains(t, a.files(t), ch.New, "the committed row's file was deleted; files %v", a.files(t))
					})
				}
			}
		}
	}
}

// S13Pic is a table whose field reports its events to the test, which
// pauses a rollback in the middle.
type S13Pic struct {
	ID   uint
	File string
}

// The same retry, with the second attempt on another goroutine while the
// first attempt's file rollback runs: paused (an OnEvent callback) at the
// deletion of an upload the first attempt made in its scope, processed
// before the handler's upload (newest first), or at the give-back of the
// handler's upload. The second attempt Adds, writes and commits in the
// pause; then the first rollback goes on, then the handler's deferred
// Rollback runs. Held.
func TestS13ProbeRetryOnAnotherGoroutineDuringRollback(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		for _, at := range []string{"delete-before", "givenback"} {
			t.Run(k.name+"/"+at, func(t *testing.T) {
				t.Parallel()
				a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
				var (
					mu    sync.Mutex
					pause func(filefield.Event)
				)
				f := filefield.New("s13", a.ffs, filefield.Options{Dir: "s13", OnEvent: func(e filefield.Event) {
					mu.Lock()
					p := pause
					mu.Unlock()
					if p != nil {
						p(e)
					}
				}})
				require.NoError(t, a.db.AutoMigrate(&S13Pic{}))
				a.plugin.Track(&S13Pic{}, "File", f)
				ctx := t.Context()
				first, err := f.Save(ctx, upload("first"))
				require.NoError(t, err)
				require.NoError(t, a.db.WithContext(ctx).Create(&S13Pic{ID: 1, File: first.New}).Error)
				ch, err := f.Replace(ctx, first.New, upload("new"))
				require.NoError(t, err)

				attempt := func(fail bool) error {
					_, err := gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
						tctx := tx.Statement.Context
						if _, err := filefield.ScopeFrom(tctx).Add(ch, nil); err != nil {
							return err
						}
						if err := tx.Model(&S13Pic{ID: 1}).Update("file", ch.New).Error; err != nil {
							return err
						}
						if fail {
							// An upload of the attempt's own, newest: its
							// rollback deletes it first.
							if _, err := f.Save(tctx, upload("own")); err != nil {
								return err
							}
							return errS13Retry
						}
						return nil
					})
					return err
				}
				var once sync.Once
				var second error
				var armed atomic.Bool
				armed.Store(true)
				done := make(chan struct{})
				mu.Lock()
				pause = func(e filefield.Event) {
					hit := false
					switch at {
					case "delete-before":
						hit = e.Action == filefield.ActionDelete
					case "givenback":
						hit = e.Action == filefield.ActionKeep && e.Path == ch.New && e.Reason == filefield.KeptGivenBack
					}
					if !hit || !armed.CompareAndSwap(true, false) {
						return
					}
					once.Do(func() {
						go func() {
							defer close(done)
							second = attempt(false)
						}()
						<-done
					})
				}
				mu.Unlock()
				err = attempt(true)
				require.ErrorIs(t, err, errS13Retry)
				select {
				case <-done:
				default:
					t.Fatalf("the pause point was never reached")
				}
				require.NoError(t, second)
				ch.Rollback(ctx) // the handler's deferred Rollback
				var p S13Pic
				require.NoError(t, a.db.First(&p, 1).Error)
				require.Equal(t, ch.New, p.File)
				assert.Contains(t, a.files(t), ch.New, "the committed row's file was deleted; files %v", a.files(t))
			})
		}
	}
}

// Transaction nested three deep; the upload (no scope) is Added at the
// top level. The innermost writes it and commits (releases), the middle
// one then fails (rolled back to its savepoint), and the top level
// commits: with no further write (the row holds the old path: both
// files stay, or at least the old one), with a write at the top level,
// or with a write in a new nested Transaction. Then the deferred Rollback.
func TestS13ProbeNestedThreeMiddleRollsBack(t *testing.T) {
	t.Parallel()
	errMiddle := errors.New("middle failed")
	for _, k := range databases {
		for _, then := range []string{"nothing", "write-top", "write-nested", "write-other-top"} {
			for _, made := range []string{"Save", "Replace"} {
				t.Run(k.name+"/"+then+"/"+made, func(t *testing.T) {
					t.Parallel()
					a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
					u := a.newUser(t, "ada")
					ctx := t.Context()
					var ch *filefield.Change
					var err error
					if made == "Save" {
						ch, err = a.pics.Save(ctx, upload("new"))
					} else {
						ch, err = a.pics.Replace(ctx, u.Picture, upload("new"))
					}
					require.NoError(t, err)
					var other *filefield.Change
					_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
						if _, err := filefield.ScopeFrom(tx.Statement.Context).Add(ch, nil); err != nil {
							return err
						}
						_, err := gormfield.Transaction(tx.Statement.Context, tx, func(tx1 *gorm.DB) error {
							if _, err := gormfield.Transaction(tx1.Statement.Context, tx1, func(tx2 *gorm.DB) error {
								return tx2.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
							}); err != nil {
								return err
							}
							return errMiddle
						})
						if !errors.Is(err, errMiddle) {
							return fmt.Errorf("middle: %w", err)
						}
						switch then {
						case "write-top":
							return tx.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
						case "write-nested":
							_, err := gormfield.Transaction(tx.Statement.Context, tx, func(tx1 *gorm.DB) error {
								return tx1.Model(&User{ID: u.ID}).Update("picture", ch.New).Error
							})
							return err
						case "write-other-top":
							var err error
							other, err = a.pics.Replace(tx.Statement.Context, u.Picture, upload("other"))
							if err != nil {
								return err
							}
							return tx.Model(&User{ID: u.ID}).Update("picture", other.New).Error
						}
						return nil
					})
					require.NoError(t, err)
					ch.Rollback(ctx) // deferred
					row := a.user(t, u.ID).Picture
					switch then {
					case "nothing":
						require.Equal(t, u.Picture, row)
					case "write-other-top":
						require.Equal(t, other.New, row)
					default:
						require.Equal(t, ch.New, row)
					}
					assert.Contains(t, a.files(t), row, "the committed row's file was deleted; files %v", a.files(t))
				})
			}
		}
	}
}

// Held (contrast to entfield's TestS13ProbeEntHookErrorIgnoredThenCommit).
// Inside gormfield.Transaction a model's AfterUpdate hook fails after the
// write; fn ignores the error and commits. The plugin claimed the upload
// before the hook ran, so the row's file stays after the handler's
// deferred Rollback.
func TestS13ProbeHookErrorIgnoredInTransaction(t *testing.T) {
	t.Parallel()
	for _, k := range databases {
		t.Run(k.name, func(t *testing.T) {
			t.Parallel()
			a := newApp(t, k, gormfield.Options{}, &gorm.Config{Logger: logger.Discard})
			require.NoError(t, a.db.AutoMigrate(&Note{}))
			a.plugin.Track(&Note{}, "File", a.pics)
			ctx := t.Context()
			first, err := a.pics.Save(ctx, upload("first"))
			require.NoError(t, err)
			require.NoError(t, a.db.Session(&gorm.Session{SkipHooks: true}).Create(&Note{ID: 1, File: first.New}).Error)
			ch, err := a.pics.Replace(ctx, first.New, upload("new"))
			require.NoError(t, err)
			_, err = gormfield.Transaction(ctx, a.db, func(tx *gorm.DB) error {
				if err := tx.Model(&Note{ID: 1}).Update("file", ch.New).Error; !errors.Is(err, errAudit) {
					return fmt.Errorf("want the hook's error: %w", err)
				}
				return nil
			})
			require.NoError(t, err)
			ch.Rollback(ctx)
			var n Note
			require.NoError(t, a.db.First(&n, 1).Error)
			require.Equal(t, ch.New, n.File)
			assert.Contains(t, a.files(t), ch.New, "the committed row's file was deleted; files %v", a.files(t))
		})
	}
}
