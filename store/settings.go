package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// A signed-in player's client settings (font size, aliases, triggers,
// keys, per-game profiles), so the phone and the desktop share them. The
// store keeps them as one opaque JSON object per user: the page owns the
// shape, and the store only bounds it.

// MaxUserSettings bounds one player's settings document.
const MaxUserSettings = 64 << 10

// UserSettingsTTL is how long settings nobody reads or writes are kept: a
// player who never comes back does not hold memory for ever. Every read
// and write starts it again.
const UserSettingsTTL = 400 * 24 * time.Hour

// ErrSettingsTooLarge is returned by PutUserSettings for a document over
// MaxUserSettings.
var ErrSettingsTooLarge = fmt.Errorf("settings are larger than %d KiB", MaxUserSettings>>10)

// ErrSettingsInvalid is returned by PutUserSettings for a document that
// is not a JSON object.
var ErrSettingsInvalid = errors.New("settings are not a JSON object")

// PutUserSettings replaces user's settings with doc, a JSON object of at
// most MaxUserSettings bytes.
func (s *Store) PutUserSettings(ctx context.Context, user string, doc []byte) error {
	if user == "" {
		return errors.New("put settings: no user")
	}
	if len(doc) > MaxUserSettings {
		return ErrSettingsTooLarge
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(doc, &obj); err != nil || obj == nil {
		return ErrSettingsInvalid
	}
	if err := s.rdb.Set(ctx, s.ks.userSettings(user), doc, UserSettingsTTL).Err(); err != nil {
		return fmt.Errorf("put settings of %s: %w", user, err)
	}
	return nil
}

// UserSettings returns user's settings document, or nil if none is stored.
func (s *Store) UserSettings(ctx context.Context, user string) ([]byte, error) {
	if user == "" {
		return nil, errors.New("get settings: no user")
	}
	b, err := s.rdb.GetEx(ctx, s.ks.userSettings(user), UserSettingsTTL).Bytes()
	if err != nil {
		if isNil(err) {
			return nil, nil
		}
		return nil, fmt.Errorf("get settings of %s: %w", user, err)
	}
	return b, nil
}

// DeleteUserSettings forgets user's settings (nothing if none are stored).
func (s *Store) DeleteUserSettings(ctx context.Context, user string) error {
	if err := s.rdb.Del(ctx, s.ks.userSettings(user)).Err(); err != nil {
		return fmt.Errorf("delete settings of %s: %w", user, err)
	}
	return nil
}
