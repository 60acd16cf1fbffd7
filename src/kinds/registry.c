/* SPDX-License-Identifier: MIT */
/* The registry of kinds: a NULL-terminated table, looked up by name. */
#include <string.h>
#include "kinds/kinds.h"

const struct kind *const kinds[] = {
	&kind_file,
	&kind_directory,
	&kind_symlink,
	&kind_secret,
	&kind_user,
	&kind_group,
	&kind_package,
	&kind_exec,
	&kind_service,
	NULL,
};

const struct kind *kind_find(const char *name)
{
	for (size_t i = 0; kinds[i]; i++)
		if (!strcmp(kinds[i]->name, name))
			return kinds[i];
	return NULL;
}
