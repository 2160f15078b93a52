// Package auth decides who a browser is.
//
// Two kinds of identity reach the edge:
//
//   - A signed token: an HS256 JWT whose "sub" claim is the user id and whose
//     "exp" claim bounds its life. A portal mints it (or an operator does,
//     with `trellis token --user alice --ttl 24h`, which calls Mint) and puts
//     it in the play URL. The verifier pins the algorithm to HS256: a token
//     that says "alg":"none", or an RS256 token signed with the shared secret
//     used as an RSA "public key" (the classic confusion attack), is refused
//     before any signature is looked at.
//
//   - A guest cookie, when the operator allows guests: a random guest id and
//     an HMAC of it, set HttpOnly on the play page, so a reload keeps the
//     same identity (and so the same game connection) without any login.
//
// A third kind is not a player's: an operator token for the web console
// (internal/console), minted by `trellis token -operator NAME`
// (MintOperator). It is signed with a key derived from the secret and
// carries the audience "trellis-console", so the edge's Verify refuses it
// and the console's VerifyOperator refuses player tokens: an operator
// named alice is not the player alice, and a player cannot reach the
// console with the token in their play URL.
//
// User ids end up in Redis key names and in the game's view of the world, so
// both paths accept only ids made of a small, safe alphabet (ValidUser). The
// two namespaces do not overlap: guest ids start with "guest-", and a token
// whose subject does is refused, since a (user, game) names one game
// connection and its holder would take over that guest's.
package auth
