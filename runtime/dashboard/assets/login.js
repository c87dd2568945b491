// The session cookie is SameSite=Strict: it is sent on a navigation that
// starts on this site, so the page moves on by itself from here.
"use strict";
window.location.replace("/ui/");
