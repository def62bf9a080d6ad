#!/bin/sh
# As the official nginx image's 20-envsubst-on-templates.sh: each /etc/nginx/templates/X.template
# becomes /etc/nginx/conf.d/X with the environment's variables filled in (nginx's own $variables,
# never set in the environment, stay as they are).
set -eu
if [ -d /etc/nginx/templates ]; then
  defined=$(env | cut -d= -f1 | sed 's/^/${/; s/$/}/' | tr '\n' ' ')
  for template in /etc/nginx/templates/*.template; do
    [ -e "$template" ] || continue
    target=/etc/nginx/conf.d/$(basename "$template" .template)
    envsubst "$defined" <"$template" >"$target"
  done
fi
exec "$@"
