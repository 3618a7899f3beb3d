import { render } from 'preact';
import { Player } from './Player';
import '../../components/style.css';
import './player.css';

const root = document.getElementById('app');
if (root) render(<Player />, root);
