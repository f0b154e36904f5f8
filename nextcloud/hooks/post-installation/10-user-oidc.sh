#!/bin/sh
# Runs once after the Nextcloud container installed itself (the image's
# /docker-entrypoint-hooks.d/post-installation). Installs the apps the MCP server uses and
# points user_oidc at the Keycloak realm, with the reference configuration: provider
# `keycloak`, client `nextcloud`, bearer validation and provisioning on, unique uids on,
# uid mapped from `sub`.
set -eu
php /var/www/html/occ app:install user_oidc || php /var/www/html/occ app:enable user_oidc
php /var/www/html/occ app:install notes || php /var/www/html/occ app:enable notes
php /var/www/html/occ user_oidc:provider keycloak \
  --clientid=nextcloud \
  --clientsecret="${MCP_HARNESS_SECRET_NEXTCLOUD:?set MCP_HARNESS_SECRET_NEXTCLOUD}" \
  --discoveryuri="${OIDC_DISCOVERY_URL:?set OIDC_DISCOVERY_URL}" \
  --check-bearer=1 \
  --bearer-provisioning=1 \
  --unique-uid=1 \
  --mapping-uid=sub
# The MCP server reaches Nextcloud as http://nextcloud inside the compose network.
php /var/www/html/occ config:system:set trusted_domains 1 --value=nextcloud
php /var/www/html/occ config:system:set allow_local_remote_servers --type=boolean --value=true
