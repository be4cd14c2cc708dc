#!/bin/sh
# Registers the project's search attributes (see workflows/search_attributes.py); safe to re-run.
set -u
temporal operator search-attribute create --namespace default --name AccountPhase --type Keyword || true
temporal operator search-attribute create --namespace default --name HealthBand --type Keyword || true
temporal operator search-attribute create --namespace default --name HealthScore --type Double || true
temporal operator search-attribute create --namespace default --name ChurnRisk --type Keyword || true
temporal operator search-attribute create --namespace default --name RenewalDate --type Datetime || true
temporal operator search-attribute create --namespace default --name ARR --type Double || true
temporal operator search-attribute create --namespace default --name CsmOwner --type Keyword || true
temporal operator search-attribute create --namespace default --name AccountTier --type Keyword || true
