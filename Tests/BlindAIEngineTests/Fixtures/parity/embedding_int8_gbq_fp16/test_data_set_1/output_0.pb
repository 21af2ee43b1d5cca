
BlogitsJ0•OMP¼ÕfÀCÈ†RžNQXJeKÓyGJÔN~P¤¿ÊÉ¯ÑÆ³C@ÂÌIO